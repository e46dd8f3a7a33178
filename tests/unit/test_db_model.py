"""The db block and its flavors without Docker: validation, rendering, GTID arithmetic."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from rich.console import Console

from labctl.cli.db import _status_table
from labctl.db.flavors import flavor
from labctl.db.secrets import ensure_secrets
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files
from tests.unit.test_lab_validation import labs_root, problems_of, write_lab  # noqa: F401

DB_LAB = """\
title: DB
summary: a db lab with mistakes
db:
  kind: db
  flavor: postgres
  replicas: 2
  replication: sync
router:
  kind: haproxy
  backends: db
app:
  kind: app
  database: router
  database_via: db
  publish:
    http: 9000
"""


def test_db_block_problems_are_reported_at_once(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "dbx", DB_LAB)
    assert problems_of("dbx") == [
        "dbx/lab.yaml:3 db: missing required key 'publish'",
        "dbx/lab.yaml:5 db.flavor: expected one of mysql, mariadb, got 'postgres'",
        "dbx/lab.yaml:7 db.replication: expected one of async, semisync, got 'sync'",
        # router.backends and app.database_via name the broken db block: nothing more to say
        # about them until it is fixed; app.database names a haproxy block, which is wrong anyway.
        "dbx/lab.yaml:13 app.database: expected the name of a db block (none), got 'router'",
    ]


def test_db_ports_are_one_per_node_and_collisions_are_found(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "dbp", "title: t\nsummary: s\ndb:\n  kind: db\n  publish: {mysql: 9000}\n"
              "app:\n  kind: app\n  publish: {http: 9002}\n")
    assert problems_of("dbp") == ["dbp/lab.yaml:8 app.publish.http: port 9002 is already published by "
                                  "db.publish.mysql"]
    lab = load_lab("dbp", parse_overrides(["app.publish.http=9003"]))
    assert lab.blocks["db"].instances() == ["db-1", "db-2", "db-3"]
    assert lab.blocks["db"].host_ports("mysql") == [9000, 9001, 9002]


def test_rendered_db_lab_has_a_config_per_node_and_a_writer_route() -> None:
    lab = load_lab("db-semisync", parse_overrides(["db.flavor=mariadb", "db.semisync_timeout=2s"]))
    files = render_files(lab, {"mariadb": "labctl/mariadb:local", "haproxy": "h", "app": "a"})
    assert sorted(f for f in files if f.startswith("db/")) == ["db/db-1.cnf", "db/db-2.cnf", "db/db-3.cnf"]
    assert "server_id = 2" in files["db/db-2.cnf"] and "rpl_semi_sync_master_timeout = 2000" in files["db/db-2.cnf"]
    assert "rpl_semi_sync_master_wait_point = AFTER_SYNC" in files["db/db-1.cnf"]
    router = files["dblb/haproxy.cfg"]
    assert "uri /writable" in router and "server db-1 db-1:3306 backup" in router
    assert 'DB_WRITER: "dblb:3306"' in files["compose.yaml"]
    assert "secrets/app.env" in files["compose.yaml"] and "MYSQL_ROOT_PASSWORD" not in files["compose.yaml"]


def test_secrets_are_owner_only_and_kept_across_renders(tmp_path: Path) -> None:
    first = ensure_secrets(tmp_path)
    assert ensure_secrets(tmp_path) == first
    for name in ("passwords.json", "db.env", "app.env"):
        assert stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    assert f"DB_PASSWORD={first['app']}" in (tmp_path / "secrets" / "app.env").read_text()


@pytest.mark.parametrize(("gtids", "count"), [("", 0), ("a:1-5", 5), ("a:1-5:7-9,\nb:3", 9)])
def test_mysql_transactions_in_a_gtid_set(gtids: str, count: int) -> None:
    assert flavor("mysql").transactions(gtids) == count


def test_mysql_errant_gtids_are_what_the_primary_lacks() -> None:
    mysql = flavor("mysql")
    assert mysql.errant("a:1-10,b:1-3", "a:1-10,b:1-3") == ""
    assert mysql.errant("a:1-12,b:1-3", "a:1-10") == "a:11-12,b:1-3"
    assert mysql.errant("a:1-4:6-9", "a:1-3:7") == "a:4:6:8-9"


def test_mariadb_positions_and_errant_domains() -> None:
    mariadb = flavor("mariadb")
    assert mariadb.transactions("0-1-42,1-2-3") == 45
    assert mariadb.errant("0-1-10,0-3-2", "0-1-10") == "0-3-2"
    assert mariadb.errant("0-1-9", "0-1-10,0-2-4") == ""


def test_each_flavor_speaks_its_own_replication_sql() -> None:
    statement, params = flavor("mysql").change_source("db-1", "repl", "pw")
    assert "SOURCE_AUTO_POSITION=1" in statement and "GET_SOURCE_PUBLIC_KEY=1" in statement
    assert params == ("db-1", "repl", "pw")
    statement, _ = flavor("mariadb").change_source("db-1", "repl", "pw")
    assert "MASTER_USE_GTID=slave_pos" in statement
    assert flavor("mysql").writable(False) == ["SET GLOBAL super_read_only = ON"]
    assert flavor("mariadb").writable(False) == ["SET GLOBAL read_only = ON"]


def test_db_status_table_fits_80_columns_and_wraps_only_the_error() -> None:
    error = "Error connecting to source 'repl@db-1:3306'. This was attempt 7/100000, with a delay of 1 seconds"
    report = {"lab": "db-failover", "flavor": "mysql", "replication": "async", "nodes": [
        {"node": "db-1", "role": "down", "error": "2003: Can't connect to MySQL server"},
        {"node": "db-2", "role": "primary", "read_only": False, "transactions": 123456},
        {"node": "db-3", "role": "replica", "read_only": True, "transactions": 123400, "source": "db-2",
         "io_thread": "Connecting", "sql_thread": "Yes", "lag_s": 12.25, "last_error": error},
    ]}
    screen = Console(width=80, record=True, file=io.StringIO())
    screen.print(_status_table(report))
    text = screen.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    assert "not answering" in text and "123456" in text and "Connecting/Yes" in text and "12.2" in text
    assert " no " in text and " yes " in text
