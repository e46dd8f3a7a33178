"""The app's DB side (images/app/appdb.py) against a scripted stand-in for PyMySQL and for
pg8000: which failures are "failed" and which "unknown", and when a request may be retried
on a fresh connection. The real servers are exercised in tests/integration/test_db_app.py."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

APPDB = Path(__file__).resolve().parents[2] / "images" / "app" / "appdb.py"


class FakeMySQLError(Exception):
    """Stands for pymysql.MySQLError (args[0] is the error code) and for pg8000's Error."""


def duplicate_error(engine: str) -> FakeMySQLError:
    if engine == "postgres":  # pg8000 puts the server's error fields in a dict, C the SQLSTATE
        return FakeMySQLError({"S": "ERROR", "C": "23505", "M": "duplicate key value violates unique constraint"})
    return FakeMySQLError(1062, "Duplicate entry")


@dataclass
class Server:
    """What a fake server at one address does: which step fails, and what it has stored."""

    name: str
    engine: str = "mysql"
    fail: dict[str, FakeMySQLError] = field(default_factory=dict)
    rows: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    statements: list[str] = field(default_factory=list)


class FakeCursor:
    def __init__(self, conn: FakeConn) -> None:
        self.conn = conn
        self.result: tuple[Any, ...] | None = None

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def execute(self, statement: str, params: tuple[str, ...] = ()) -> None:
        server = self.conn.server
        verb = statement.split()[0].lower()
        server.statements.append(verb)
        if verb in server.fail:
            raise server.fail[verb]
        if verb == "select" and ("@@hostname" in statement or "labctl.node" in statement):
            self.result = (server.name,)
        elif verb == "select":
            self.result = (params[0], server.rows[params[0]], None) if params[0] in server.rows else None
        elif verb == "insert":
            if params[0] in server.rows:
                raise duplicate_error(server.engine)
            self.conn.pending = params

    def fetchone(self) -> Any:
        return self.result

    def close(self) -> None:
        return None


class FakeConn:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.pending: tuple[str, ...] | None = None
        self._usock = SimpleNamespace(settimeout=lambda seconds: None)  # pg8000's socket

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def begin(self) -> None:
        if "begin" in self.server.fail:
            raise self.server.fail["begin"]

    def commit(self) -> None:
        self.server.statements.append("commit")
        if "commit" in self.server.fail:
            raise self.server.fail["commit"]
        if self.pending:
            self.server.rows[self.pending[0]] = self.pending[1]

    def rollback(self) -> None:
        self.server.statements.append("rollback")
        self.pending = None

    def close(self) -> None:
        return None


@pytest.fixture(params=["mysql", "postgres"])
def appdb(request: pytest.FixtureRequest,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, dict[str, Server]]]:
    # No __pycache__ in images/app: the image's inputs digest covers every file there.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    spec = importlib.util.spec_from_file_location("appdb_under_test", APPDB)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    engine = str(request.param)
    servers = {f"db{n}": Server(f"node-{n}", engine) for n in (1, 2, 3)}

    def connect(host: str, **_: object) -> FakeConn:
        server = servers[host]
        if "connect" in server.fail:
            raise server.fail["connect"]
        server.connections += 1
        return FakeConn(server)

    monkeypatch.setattr(module, "pymysql", SimpleNamespace(MySQLError=FakeMySQLError, connect=connect))
    monkeypatch.setattr(module, "pg8000", SimpleNamespace(Error=FakeMySQLError, connect=connect))
    monkeypatch.setenv("DB_ENGINE", engine)
    monkeypatch.setenv("DB_WRITER", "db1:3306")
    monkeypatch.setenv("DB_READERS", "db2:3306,db3:3306")
    yield module, servers


def call(module: ModuleType, method: str, path: str, **query: str) -> Any:
    return module.handle(method, path, {k: [v] for k, v in query.items()}, "app-1")


def test_ack_only_after_commit_and_node_named(appdb: tuple[ModuleType, dict[str, Server]]) -> None:
    module, servers = appdb
    answer = call(module, "POST", "/write", id="w1")
    assert (answer.status, answer.body["outcome"], answer.node) == (200, "ack", "node-1")
    assert servers["db1"].rows == {"w1": "app-1"} and servers["db1"].statements[-1] == "commit"
    assert call(module, "POST", "/write", id="w1").status == 409
    assert call(module, "POST", "/write", id="w2").status == 200
    assert servers["db1"].connections == 1  # the pool kept the connection through the 409


def test_commit_without_answer_is_unknown_and_not_retried(appdb: tuple[ModuleType, dict[str, Server]]) -> None:
    module, servers = appdb
    assert call(module, "POST", "/write", id="w1").status == 200
    servers["db1"].fail["commit"] = FakeMySQLError(2013, "Lost connection to MySQL server during query")
    answer = call(module, "POST", "/write", id="w2")
    assert (answer.status, answer.body["outcome"], answer.body["stage"]) == (504, "unknown", "commit")
    assert servers["db1"].statements.count("insert") == 2  # w1 and w2, each once


def test_reused_connection_failing_fast_is_retried_on_a_fresh_one(
        appdb: tuple[ModuleType, dict[str, Server]]) -> None:
    module, servers = appdb
    assert call(module, "POST", "/write", id="w1").status == 200
    # The pooled connection leads to a fenced server; the fresh one (after the switch) works.
    servers["db1"].fail["insert"] = FakeMySQLError(1290, "--read-only")
    original = module.Pool.connect

    def heal_then_connect(pool: Any) -> Any:
        servers["db1"].fail.pop("insert", None)
        return original(pool)

    module.Pool.connect = heal_then_connect
    answer = call(module, "POST", "/write", id="w2")
    assert (answer.status, servers["db1"].connections) == (200, 2)


def test_fresh_connection_failing_is_failed(appdb: tuple[ModuleType, dict[str, Server]]) -> None:
    module, servers = appdb
    servers["db1"].fail["insert"] = FakeMySQLError(1290, "--read-only")
    answer = call(module, "POST", "/write", id="w1")
    assert (answer.status, answer.body["outcome"], answer.body["stage"]) == (503, "failed", "insert")
    assert servers["db1"].connections == 1 and servers["db1"].rows == {}


def test_no_connection_is_failed(appdb: tuple[ModuleType, dict[str, Server]]) -> None:
    module, servers = appdb
    servers["db1"].fail["connect"] = FakeMySQLError(2003, "Can't connect")
    answer = call(module, "POST", "/write", id="w1")
    assert (answer.status, answer.body["outcome"], answer.body["stage"]) == (503, "failed", "connect db1:3306")


def test_reads_take_turns_and_skip_a_dead_reader(appdb: tuple[ModuleType, dict[str, Server]]) -> None:
    module, servers = appdb
    servers["db2"].rows["r1"] = servers["db3"].rows["r1"] = "app-9"
    nodes = [call(module, "GET", "/read/r1").node for _ in range(4)]
    assert sorted(nodes) == ["node-2", "node-2", "node-3", "node-3"]
    servers["db2"].fail["connect"] = FakeMySQLError(2003, "Can't connect")
    module.database().readers[0].flush()
    answers = [call(module, "GET", "/read/r1") for _ in range(4)]
    assert {(a.status, a.node) for a in answers} == {(200, "node-3")}
    missing = call(module, "GET", "/read/r2")
    assert (missing.status, missing.body["found"]) == (404, False)
    assert call(module, "GET", "/read/r1", primary="1").status == 404  # the writer has no such row


def test_no_database_configured(appdb: tuple[ModuleType, dict[str, Server]],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    module, _ = appdb
    monkeypatch.delenv("DB_WRITER")
    answer = call(module, "POST", "/write", id="w1")
    assert answer.status == 503 and "no database configured" in answer.body["error"]


@pytest.mark.parametrize("bad", ["", "x" * 65, "a\nb"])
def test_bad_ids(appdb: tuple[ModuleType, dict[str, Server]], bad: str) -> None:
    module, _ = appdb
    assert call(module, "POST", "/write", id=bad).status == 400


def test_a_postgres_read_ends_its_transaction(appdb: tuple[ModuleType, dict[str, Server]]) -> None:
    module, servers = appdb
    servers["db2"].rows["r1"] = "app-9"
    assert call(module, "GET", "/read/r1").status == 200
    if servers["db2"].engine == "postgres":  # autocommit off: no connection idles in a transaction
        assert servers["db2"].statements[-1] == "rollback"


def test_an_unknown_engine_is_named(appdb: tuple[ModuleType, dict[str, Server]],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    module, _ = appdb
    monkeypatch.setenv("DB_ENGINE", "oracle")
    answer = call(module, "POST", "/write", id="w1")
    assert answer.status == 503 and "unknown DB_ENGINE 'oracle'" in answer.body["error"]


def test_a_missing_driver_is_named(appdb: tuple[ModuleType, dict[str, Server]],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    module, servers = appdb
    monkeypatch.setattr(module, "pg8000" if servers["db1"].engine == "postgres" else "pymysql", None)
    answer = call(module, "POST", "/write", id="w1")
    assert answer.status == 503 and "driver in this image" in answer.body["error"]
