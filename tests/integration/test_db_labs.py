"""MySQL and MariaDB labs on real Docker: replication set up by `up`, failover (manual, auto),
fencing, the lost-write ledger, semi-sync fallback, and `db check` finding errant GTIDs."""

from __future__ import annotations

import json
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from labctl.db import nodes as db
from labctl.experiments import compare
from labctl.render import running_lab
from labctl.runtime.dockerenv import docker_client
from tests.integration.conftest import Cli


@pytest.fixture()
def home(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """The CLI, with this process looking at the same LABCTL_HOME (for direct SQL)."""
    monkeypatch.setenv("LABCTL_HOME", str(cli.home))
    yield cli


def post_write(port: int, write_id: str) -> dict[str, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/write?id={write_id}", method="POST")
    with urllib.request.urlopen(request, timeout=15) as response:
        return dict(json.loads(response.read()))


def read_back(port: int, write_id: str, primary: bool = False) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{port}/read/{write_id}" + ("?primary=1" if primary else "")
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return error.code, dict(json.loads(error.read()))


def db_status(cli: Cli, lab: str) -> dict[str, object]:
    return dict(json.loads(cli.ok("db", "status", lab, "--json")))


def by_node(status: dict[str, object]) -> dict[str, dict[str, object]]:
    return {str(row["node"]): row for row in status["nodes"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize("flavor", ["mysql", "mariadb"])
def test_up_sets_up_gtid_replication(home: Cli, flavor: str) -> None:
    output = home.ok("up", "db-replication", "--set", f"db.flavor={flavor}")
    passwords = json.loads((home.home / "compose" / "db-replication" / "secrets" / "passwords.json").read_text())
    assert not any(password in output for password in passwords.values()), "up printed a password"
    assert home.ok("db", "password", "db-replication", "repl").strip() == passwords["repl"]
    for name in ("passwords.json", "db.env", "app.env"):
        mode = (home.home / "compose" / "db-replication" / "secrets" / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600, name
    status = db_status(home, "db-replication")
    assert status["flavor"] == flavor and status["primary"] == "db-1"
    nodes = by_node(status)
    for replica in ("db-2", "db-3"):
        assert nodes[replica]["role"] == "replica" and nodes[replica]["source"] == "db-1"
        assert (nodes[replica]["io_thread"], nodes[replica]["sql_thread"]) == ("Yes", "Yes")
        assert nodes[replica]["read_only"] is True
    written = post_write(8150, f"t-{flavor}")
    assert written["outcome"] == "ack" and written["db_node"] == "db-1"
    deadline = time.monotonic() + 10
    while (answer := read_back(8150, f"t-{flavor}"))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer[0] == 200 and answer[1]["db_node"] in ("db-2", "db-3"), answer
    assert read_back(8150, "never-written")[0] == 404
    # A second `up` of a running lab keeps its replication as it is.
    home.ok("up", "db-replication", "--set", f"db.flavor={flavor}")
    assert db_status(home, "db-replication")["primary"] == "db-1"
    if flavor == "mysql":  # the guide's checkpoint: read-backs from async replicas are often stale
        checked = json.loads(home.ok("check", "db-replication", "stale-reads-without-delay", "--json"))
        [checkpoint] = checked["checkpoints"]
        assert checked["passed"], checkpoint["expectations"]
        assert checkpoint["runs"]["load"]["figures"]["lost_writes"] == 0


def test_manual_failover_fences_the_old_primary_and_moves_writes(home: Cli) -> None:
    home.ok("up", "db-failover")
    assert post_write(8140, "before")["db_node"] == "db-1"
    report = json.loads(home.ok("db", "failover", "db-failover", "--to", "db-3", "--json"))
    assert (report["old_primary"], report["new_primary"]) == ("db-1", "db-3")
    steps = [s["step"] for s in report["steps"]]
    assert steps[:5] == ["survey", "fence", "catch up", "apply relay logs", "promote"]
    # The other replica is repointed while the router finds the new primary: either may end first.
    assert sorted(steps[5:]) == ["re-route", "repoint"]
    assert [s.get("beside") for s in report["steps"] if s["step"] == "repoint"] == ["re-route"]
    nodes = by_node(db_status(home, "db-failover"))
    assert nodes["db-1"]["read_only"] is True, "the old primary was not fenced"
    assert nodes["db-3"]["role"] == "primary" and nodes["db-2"]["source"] == "db-3"
    assert post_write(8140, "after")["db_node"] == "db-3"
    assert read_back(8140, "before", primary=True)[0] == 200
    unknown = home.run("db", "failover", "db-failover", "--to", "db-9")
    assert unknown.returncode == 2 and "no db node 'db-9'" in unknown.stderr


def test_async_kill_primary_drill_counts_lost_writes(home: Cli) -> None:
    home.ok("up", "db-failover")
    report = json.loads(home.ok("drill", "db-failover", "kill-primary", "--json", timeout=300))
    writes = report["writes"]
    assert writes["acknowledged"] > 100 and writes["unexpected"] == 0
    # Cut off from its replicas, the async primary kept acknowledging writes that then died with it.
    assert writes["lost"] > 0 and report["rpo_writes"] == writes["lost"]
    assert report["ids"]["lost"] and report["rpo"]["span_s"] >= 0
    assert report["failover"]["mode"] == "auto" and report["failover"]["old_primary"] == "db-1"
    assert report["failover"]["detection_s"] is not None and report["rto_s"] is not None
    assert report["replication"] == {"mode": "async", "fell_back_to_async": False,
                                     "max_lag_s": report["replication"]["max_lag_s"]}
    primary = running_lab("db-failover")
    present = _ids_on_primary(primary, report["ids"]["lost"])
    assert present == set(), "a write counted lost is on the primary"
    [run_dir] = (home.home / "runs" / "db-failover").glob("*-drill-kill-primary")
    markdown = (run_dir / "report.md").read_text()
    assert "## Writes, checked against the final primary" in markdown
    assert f"{writes['lost']} lost, {writes['recovered']} recovered" in markdown
    # The writes before the fault give the design's steady write latency; compare's row says the same.
    steady = report["steady_write_ms"]
    assert steady["writes"] > 50 and 0 < steady["p50"] <= steady["p99"]
    [row] = compare.compare_rows(compare.load_reports([run_dir / "drill.json"]))
    assert (row["lost_writes"], row["rto_s"]) == (writes["lost"], report["rto_s"])
    assert row["refused_writes"] == writes["failed"] + writes["unknown"]
    # After the drill the old primary was rebuilt and follows the new one: the lab is whole again.
    check = json.loads(home.ok("db", "check", "db-failover", "--json"))
    assert check["consistent"] and not check["unreachable"]


def test_manual_failover_drill_times_the_person_at_the_keyboard(home: Cli) -> None:
    # kill-primary-manual, as an attendee runs it: the drill in one terminal, and
    # `labctl db failover` in another once writes start failing.
    home.ok("up", "db-failover")
    drill = subprocess.Popen([*home.argv(), "drill", "db-failover", "kill-primary-manual", "--json"],
                             env=home.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    primary = docker_client().containers.get("labctl-db-failover-db-1")
    deadline = time.monotonic() + 120
    while primary.status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        primary.reload()
    seen_dead = time.time()
    time.sleep(3)  # the person notices, then types
    failover_started = time.time()
    home.ok("db", "failover", "db-failover")
    stdout, stderr = drill.communicate(timeout=300)
    assert drill.returncode == 0, stderr
    report = json.loads(stdout)
    assert report["verdict"] == "pass" and report["writes"]["unexpected"] == 0
    # No write can be acknowledged by a new primary before the failover began.
    assert report["rto_s"] >= failover_started - seen_dead
    check = json.loads(home.ok("db", "check", "db-failover", "--json"))
    assert check["consistent"] and not check["unreachable"]


def test_load_counts_the_writes_a_kill_during_it_lost(home: Cli) -> None:
    # The workshop flow without a drill: load in one terminal, chaos and failover in another.
    home.ok("up", "db-failover")
    load = subprocess.Popen([*home.argv(), "load", "db-failover", "--users", "4", "--duration", "14s", "--json"],
                            env=home.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    killed_at = time.time()
    home.ok("chaos", "db-failover", "kill", "db.1")
    time.sleep(1)
    home.ok("db", "failover", "db-failover")
    stdout, stderr = load.communicate(timeout=120)
    assert load.returncode == 0, stderr
    writes = json.loads(stdout)["db"]
    assert writes["checked"] and writes["fault"] == {"fault": "kill", "target": "db-1"}
    assert writes["writes"]["acknowledged"] > 50 and writes["writes"]["unexpected"] == 0
    assert writes["fault_at"] == pytest.approx(killed_at, abs=2)
    # No new primary acknowledged anything before the failover began, a second after the kill.
    assert writes["rto_s"] is not None and writes["rto_s"] >= 1.0
    assert _ids_on_primary(running_lab("db-failover"), writes["ids"]["lost"]) == set()
    home.ok("heal", "db-failover")
    home.ok("db", "rejoin", "db-failover")


def _ids_on_primary(lab: object, ids: list[str]) -> set[str]:
    found = db.current_primary(db.states(lab))  # type: ignore[arg-type]
    assert found is not None
    connection = db.connect(lab, found.node)  # type: ignore[arg-type]
    try:
        rows = [db.run_sql(connection, "SELECT id FROM labctl.writes WHERE id = %s", (i,)) for i in ids]
    finally:
        connection.close()
    return {str(r[0]["id"]) for r in rows if r}


def test_semisync_kill_primary_drill_loses_nothing_on_mariadb(home: Cli) -> None:
    home.ok("up", "db-semisync", "--set", "db.flavor=mariadb")
    report = json.loads(home.ok("drill", "db-semisync", "kill-primary", "--json", timeout=300))
    assert report["verdict"] == "pass", report["expectations"]
    assert report["writes"]["lost"] == 0 and report["writes"]["acknowledged"] > 100
    assert report["replication"]["mode"] == "semisync"
    assert report["failover"]["new_primary"] in ("db-2", "db-3")


@pytest.mark.parametrize("flavor", ["mysql", "mariadb"])
def test_semisync_falls_back_to_async_when_no_replica_answers(home: Cli, flavor: str) -> None:
    home.ok("up", "db-semisync", "--set", f"db.flavor={flavor}", "--set", "db.semisync_timeout=1s")
    assert db_status(home, "db-semisync")["fell_back_to_async"] is False
    lab = running_lab("db-semisync")
    for replica in db.nodes(lab)[1:]:
        db.execute(lab, replica, ["STOP REPLICA IO_THREAD"])
    started = time.monotonic()
    assert post_write(8160, f"alone-{flavor}")["outcome"] == "ack"
    assert time.monotonic() - started >= 0.9, "the commit did not wait for the semi-sync timeout"
    status = db_status(home, "db-semisync")
    assert status["fell_back_to_async"] is True
    assert "fell back to async" in home.ok("db", "status", "db-semisync")


def test_db_check_finds_an_errant_transaction_and_rejoin_repairs_it(home: Cli) -> None:
    home.ok("up", "db-replication")
    assert json.loads(home.ok("db", "check", "db-replication", "--json"))["consistent"] is True
    lab = running_lab("db-replication")
    replica = db.node_named(lab, "db-2")
    db.execute(lab, replica, ["SET GLOBAL super_read_only = OFF",
                              "INSERT INTO labctl.writes (id, served_by) VALUES ('planted', 'test')",
                              "SET GLOBAL super_read_only = ON"])
    result = home.run("db", "check", "db-replication", "--json")
    assert result.returncode == 1
    check = json.loads(result.stdout)
    nodes = {row["node"]: row for row in check["nodes"]}
    assert nodes["db-2"]["errant_gtids"] and nodes["db-2"]["same_as_primary"] is False
    assert not nodes["db-3"]["errant_gtids"] and nodes["db-3"]["same_as_primary"] is True
    before = docker_client().containers.get("labctl-db-replication-db-2")
    assert "db-2 rebuilt" in home.ok("db", "rejoin", "db-replication", "db-2")
    assert json.loads(home.ok("db", "check", "db-replication", "--json"))["consistent"] is True
    # MySQL clones the primary into the same container (restarted on the copy) instead of
    # recreating it empty to replay the whole log.
    after = docker_client().containers.get("labctl-db-replication-db-2")
    assert after.id == before.id and after.attrs["State"]["StartedAt"] != before.attrs["State"]["StartedAt"]


def test_rejoin_rebuilds_a_node_empty_when_it_cannot_clone(home: Cli) -> None:
    home.ok("up", "db-replication")
    lab = running_lab("db-replication")
    replica = db.node_named(lab, "db-2")
    # As a node started from a config without the clone plugin would be.
    db.execute(lab, replica, ["SET GLOBAL super_read_only = OFF", "UNINSTALL PLUGIN clone",
                              "INSERT INTO labctl.writes (id, served_by) VALUES ('planted', 'test')",
                              "SET GLOBAL super_read_only = ON"])
    before = docker_client().containers.get("labctl-db-replication-db-2")
    assert "db-2 rebuilt" in home.ok("db", "rejoin", "db-replication", "db-2")
    assert docker_client().containers.get("labctl-db-replication-db-2").id != before.id
    assert json.loads(home.ok("db", "check", "db-replication", "--json"))["consistent"] is True


def test_replica_lag_drill_counts_stale_reads(home: Cli) -> None:
    home.ok("up", "db-replication")
    report = json.loads(home.ok("drill", "db-replication", "replica-lag", "--json", timeout=300))
    assert report["verdict"] == "pass", report["expectations"]
    assert report["stale_reads"]["stale"] > 0
    assert report["replication"]["max_lag_s"] >= 2.0
    assert report["writes"]["lost"] == 0


def test_db_commands_on_a_lab_without_a_db(home: Cli) -> None:
    result = home.run("db", "status", "single-server")
    assert result.returncode == 2 and "has no db block" in result.stderr


@pytest.mark.parametrize("flavor", ["mysql", "mariadb"])
def test_up_switches_a_running_lab_between_async_and_semisync(home: Cli, flavor: str) -> None:
    from labctl.db.mode import semisync_in_use

    home.ok("up", "db-semisync", "--set", f"db.flavor={flavor}", "--set", "db.replication=async")
    lab = running_lab("db-semisync")
    kind, primary = db.lab_flavor(lab), db.nodes(lab)[0]
    assert not semisync_in_use(lab, primary, kind)
    # Progress lines are throttled without a terminal: the nodes' own switches say what happened.
    home.ok("up", "db-semisync", "--set", f"db.flavor={flavor}", "--set", "db.semisync_timeout=1s")
    lab = running_lab("db-semisync")
    assert semisync_in_use(lab, primary, kind)
    # Semi-sync for real: with no replica receiving, a commit waits out the timeout.
    for replica in db.nodes(lab)[1:]:
        db.execute(lab, replica, ["STOP REPLICA IO_THREAD"])
    started = time.monotonic()
    assert post_write(8160, f"switched-{flavor}")["outcome"] == "ack"
    assert time.monotonic() - started >= 0.9, "the commit did not wait for a semi-sync acknowledgement"
    for replica in db.nodes(lab)[1:]:
        db.execute(lab, replica, ["START REPLICA IO_THREAD"])
    home.ok("up", "db-semisync", "--set", f"db.flavor={flavor}", "--set", "db.replication=async")
    assert not semisync_in_use(running_lab("db-semisync"), primary, kind)
