"""The master-master block without Docker: validation, what reaches the configs, a stopped
channel's error read from SHOW REPLICA STATUS and from the node's log, and the drill's rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.pair import drill_pair, replication
from labctl.pair.replication import PairView, is_set_up, writer_of
from labctl.render import render_files
from labctl.runtime import inventory
from tests.unit.test_lab_validation import labs_root, problems_of, write_lab  # noqa: F401

IMAGES = {"app": "labctl/app:local", "haproxy": "labctl/haproxy:local", "mysql": "labctl/mysql:local"}
BAD = """\
title: t
summary: s
db:
  kind: master-master
  auto_increment_offsets: sometimes
  replicas: 3
  publish: {mysql: 13211}
"""
# Recorded from db-2 of db-master-master after the duplicate-key drill (MySQL 9.7).
WORKER_LOG = (
    "2026-12-03T12:52:56.310698Z 18 [ERROR] [MY-010584] [Repl] Replica SQL for channel '': Worker 3 failed "
    "executing transaction 'eecc1692-ef17-11f1-9d10-0242ac150003:1012' at source log binlog.000001, end_log_pos "
    "414176; Could not execute Write_rows event on table labctl.accounts; Duplicate entry 'dup-aeff0b968188@lab.test'"
    " for key 'accounts.email', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's source log "
    "binlog.000001, end_log_pos 414176, Error_code: MY-001062"
)
# Another worker of the same node, stopped because the first failed: it must not hide the cause.
FOLLOW_ON = (
    "2026-12-03T14:01:10.1Z 20 [ERROR] [MY-010584] [Repl] Replica SQL for channel '': Worker 2 failed executing "
    "transaction '786ba321-ef22-11f1-a1fc-0242c0a8c002:4143' at source log binlog.000001, end_log_pos 9; Replica "
    "worker has stopped after at least one previous worker encountered an error when replica-preserve-commit-order "
    "was enabled. To preserve commit order, the last transaction executed by this thread has not been committed. "
    "When restarting the replica after fixing any failed threads, you should fix this worker as well, "
    "Error_code: MY-003030"
)
COORDINATOR = ("Coordinator stopped because there were error(s) in the worker(s). The most recent failure being: "
               "Worker 1 failed executing transaction 'eeadbb63-ef17-11f1-ba98-0242ac150002:207' at source log "
               "binlog.000001, end_log_pos 411430. See error log and/or performance_schema.")


def test_master_master_block_problems_are_reported_at_once(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "m", BAD)
    assert problems_of("m") == [
        "m/lab.yaml:6 db.replicas: unknown key 'replicas' (known keys: auto_increment_offsets, cpus, kind, memory, "
        "publish)",
        "m/lab.yaml:5 db.auto_increment_offsets: expected on or off, got 'sometimes'",
    ]


def test_each_node_gets_its_own_auto_increment_offset_and_haproxy_writes_to_db_1() -> None:
    files = render_files(load_lab("db-master-master"), IMAGES)
    assert "auto_increment_increment = 2\nauto_increment_offset = 1" in files["db/db-1.cnf"]
    assert "auto_increment_offset = 2" in files["db/db-2.cnf"]
    router = files["dblb/haproxy.cfg"]
    assert "server db-1 db-1:3306 on-marked-up shutdown-backup-sessions" in router
    assert "server db-2 db-2:3306 backup" in router


def test_offsets_can_be_switched_off() -> None:
    lab = load_lab("db-master-master", parse_overrides(["db.auto_increment_offsets=false"]))
    assert "auto_increment" not in render_files(lab, IMAGES)["db/db-2.cnf"]


def _view(name: str, source: str, read_only: bool = False, **replica: str) -> PairView:
    return PairView(name, 1, True, read_only, "", {"Source_Host": source, **replica})


def test_a_pair_is_set_up_when_each_node_replicates_from_the_other() -> None:
    assert is_set_up([_view("db-1", "db-2"), _view("db-2", "db-1")])
    assert not is_set_up([_view("db-1", ""), _view("db-2", "db-1")])
    assert writer_of([_view("db-1", "db-2", read_only=True), _view("db-2", "db-1")]) == "db-2"


def test_a_stopped_channel_names_its_failed_transaction_and_the_log_names_the_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    view = _view("db-1", "db-2", Last_SQL_Errno="1062", Last_SQL_Error=COORDINATOR)
    assert view.sql_error == "1062: transaction eeadbb63-ef17-11f1-ba98-0242ac150002:207 failed"
    monkeypatch.setattr(inventory, "container_logs_tail", lambda name, lines: f"other\n{WORKER_LOG}\n{FOLLOW_ON}\n")
    assert replication.worker_error(load_lab("db-master-master"), "db-2") == (
        "1062: Duplicate entry 'dup-aeff0b968188@lab.test' for key 'accounts.email'")


def test_drill_rows_say_what_each_step_found() -> None:
    report = {"pair": {
        "conflict": {"increments_committed": 395, "rows": 10, "rows_differing": 10,
                     "nodes": {"db-1": {"increments_lost": 179}, "db-2": {"increments_lost": 153}}},
        "duplicate_key": {"key": "email", "channels": {
            "db-1": {"sql_error": "1062: transaction x failed", "worker_error": "Duplicate entry 'a'"},
            "db-2": {"sql_error": "", "worker_error": ""}}},
        "after_return": {"arrived_after_return": 2, "still_lost": 0},
    }}
    assert drill_pair.report_rows(report) == [
        ("conflicting updates", "395 committed, none refused; 10 of 10 rows differ", "two clients, one per node"),
        ("increments lost", "db-1 179, db-2 153", "committed increments each node's sum lacks"),
        ("duplicate key", "db-1: Duplicate entry 'a'", "same email on both"),
        ("after the node returned", "2 missing writes arrived, 0 still lost",
         "read from the writer once both converged"),
    ]
