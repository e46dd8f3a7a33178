"""db-backup on a real Docker engine: a backup and a restore to just before a DROP (by its GTID)
or to a time bring back exactly the rows acknowledged before that point, on the primary and
through replication on the replica; bad restore points are refused; the accidental-drop drill
loses no acknowledged write. One lab up (MySQL) for the whole module."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
from typing import Any

import pytest

from labctl.db.binlog import first_drop, transactions
from tests.integration.conftest import Cli, lab_for_module
from tests.integration.test_db_labs import post_write

LAB = "db-backup"
HTTP = 8211
CONTAINER = f"labctl-{LAB}-db-1"


@pytest.fixture(scope="module")
def backup_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    return lab_for_module(tmp_path_factory, request, LAB)


def _write(prefix: str, count: int) -> list[str]:
    acknowledged = []
    for n in range(count):
        try:
            answer = post_write(HTTP, f"{prefix}-{n}")
        except urllib.error.HTTPError:
            continue  # 503: the write failed (the table is gone)
        if answer.get("outcome") == "ack":
            acknowledged.append(f"{prefix}-{n}")
    return acknowledged


def _ids(cli: Cli, node: str = "db-1") -> set[str]:
    sql = "SELECT id FROM labctl.writes"
    script = f'MYSQL_PWD=$MYSQL_ROOT_PASSWORD mysql -uroot -N -e "{sql}"'
    result = cli_exec(f"labctl-{LAB}-{node}", script)
    return set(result.split())


def cli_exec(container: str, script: str) -> str:
    done = subprocess.run(["docker", "exec", container, "bash", "-c", script], capture_output=True, text=True,
                          check=True, timeout=120)
    return done.stdout


def _backup(cli: Cli) -> dict[str, Any]:
    taken: dict[str, Any] = json.loads(cli.ok("db", "backup", LAB, "--json"))
    return taken


def _drop_gtid(backup: dict[str, Any]) -> str:
    logs = cli_exec(CONTAINER, "cd /var/lib/mysql && ls binlog.[0-9]*").split()
    found = []
    for name in (n for n in logs if n >= backup["binlog_file"]):
        start = f"--start-position={backup['binlog_position']} " if name == backup["binlog_file"] else ""
        text = cli_exec(CONTAINER, f"cd /var/lib/mysql && TZ=UTC mysqlbinlog --base64-output=DECODE-ROWS {start}{name}")
        found.extend(transactions(text, name))
    drop = first_drop(found, "labctl.writes")
    assert drop is not None
    return drop.gtid


def test_restore_before_the_drop_brings_back_exactly_the_acknowledged_rows(backup_lab: Cli) -> None:
    before = _write("pre", 5)
    backup = _backup(backup_lab)
    assert backup["tables"]["labctl.writes"] >= 5 and backup["gtid_set"] and backup["node"] == "db-1"
    listed = json.loads(backup_lab.ok("db", "backups", LAB, "--json"))
    assert backup["id"] in [b["id"] for b in listed]
    after = _write("post", 10)
    backup_lab.ok("chaos", LAB, "drop-table", "db.primary")
    assert _write("dropped", 2) == []
    gtid = _drop_gtid(backup)
    done = json.loads(backup_lab.ok("db", "restore", LAB, "--backup", backup["id"], "--before-gtid", gtid, "--json"))
    assert done["point"]["before_gtid"] == gtid and done["transactions_replayed"] >= 10
    assert done["rows_from_dump"]["labctl.writes"] == backup["tables"]["labctl.writes"]
    wanted = {*before, *after}
    assert wanted <= _ids(backup_lab) and not {i for i in _ids(backup_lab) if i.startswith("dropped")}
    assert done["replicas"]["db-2"]["labctl.writes"] == done["rows"]["labctl.writes"]
    assert _ids(backup_lab, "db-2") == _ids(backup_lab)


def test_restore_to_a_time_keeps_what_came_before_it_only(backup_lab: Cli) -> None:
    backup = _backup(backup_lab)
    kept = _write("kept", 5)
    time.sleep(1.5)
    point = time.time()
    time.sleep(1.5)
    undone = _write("undone", 5)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(point + 0.999))
    done = json.loads(backup_lab.ok("db", "restore", LAB, "--backup", backup["id"], "--to-time", when, "--json"))
    ids = _ids(backup_lab)
    assert set(kept) <= ids and not set(undone) & ids, done


def test_bad_restore_points_are_refused_with_what_to_do(backup_lab: Cli) -> None:
    backup = _backup(backup_lab)
    unknown = backup_lab.run("db", "restore", LAB, "--backup", "b-nope")
    assert unknown.returncode == 1 and "no backup 'b-nope' (backups: " in unknown.stderr
    early = backup_lab.run("db", "restore", LAB, "--backup", backup["id"], "--to-time", "2000-01-01 00:00:00")
    assert early.returncode == 2 and "is before backup" in early.stderr
    missing = backup_lab.run("db", "restore", LAB, "--backup", backup["id"], "--before-gtid",
                             backup["gtid_set"].split(":")[0] + ":999999999")
    assert missing.returncode == 1 and "is not in the binary logs after backup" in missing.stderr


def test_accidental_drop_drill_loses_no_acknowledged_write(backup_lab: Cli) -> None:
    result = backup_lab.run("drill", LAB, "accidental-drop", "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    writes, restore = report["writes"], report["restore"]
    assert writes["lost"] == 0 and writes["acknowledged"] > 20 and writes["failed"] > 0
    assert restore["seconds"] < 30 and restore["transactions_replayed"] > 0 and "error" not in restore
