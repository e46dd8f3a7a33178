"""A Locust user for Patroni labs: unique rows INSERTed through HAProxy's writer port, every
outcome in the same ledger as the db labs'.

The writer port (LABCTL_PG_WRITER, from the lab's haproxy block) forwards to the member whose
Patroni answers /primary; the user keeps one connection, opens a new one after any error,
and asks each new connection which node it reached (`labctl.node`, set per node in its
config). An INSERT is `ack` once its COMMIT (autocommit) returns; refused before it was sent
(no connection, read-only standby, SQLSTATE class 25) is `failed`; no answer within
LABCTL_PG_TIMEOUT seconds (2), or a connection dropped after sending, is `unknown`: postgres
may have committed it locally (in synchronous mode, a COMMIT interrupted while it waits for
its standby is committed on the primary but not acknowledged). A lab's locustfile uses it with:

    from labctl.loadgen.pg_user import PgWriteUser  # noqa: F401
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from typing import Any

import pg8000.native
from locust import User, constant, task

from labctl.experiments.ledger import ACK, UNKNOWN, write_id
from labctl.loadgen.db_user import RUN_ID, record
from labctl.patroni.outcomes import NotConnected, outcome_of, sqlstate

WRITER_PORT = int(os.environ.get("LABCTL_PG_WRITER", "0") or 0)
PASSWORD = os.environ.get("LABCTL_PG_PASSWORD", "")
TIMEOUT_S = float(os.environ.get("LABCTL_PG_TIMEOUT", "2"))
# After an error, a short pause: HAProxy with no primary behind it closes at once.
ERROR_PAUSE_S = 0.05
_sequence = itertools.count(1)


class Served:
    """What the labctl plugin reads from a response: the node, as X-Served-By."""

    def __init__(self, node: str) -> None:
        self.headers = {"X-Served-By": node}


class PgWriteUser(User):
    """INSERTs unique ids back to back through the writer port."""

    wait_time = constant(0)
    abstract = False

    def on_start(self) -> None:
        self.connection: pg8000.native.Connection | None = None
        self.node = ""

    def on_stop(self) -> None:
        self._drop()

    def _connect(self) -> pg8000.native.Connection:
        if self.connection is None:
            try:
                connection = pg8000.native.Connection("app", host="127.0.0.1", port=WRITER_PORT, database="postgres",
                                                      password=PASSWORD, timeout=TIMEOUT_S)
                [[self.node]] = connection.run("SELECT current_setting('labctl.node', true)")
            except (pg8000.native.Error, OSError, ValueError) as exc:
                raise NotConnected(str(exc)) from exc
            self.connection = connection
        return self.connection

    def _drop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(pg8000.native.Error, OSError):
                self.connection.close()
        self.connection, self.node = None, ""

    @task
    def insert(self) -> None:
        entry: dict[str, Any] = {"id": write_id(RUN_ID, os.getpid(), next(_sequence)), "run": RUN_ID}
        entry["sent"] = time.time()
        try:
            self.write(entry)
        finally:
            if "outcome" not in entry:  # interrupted (Locust stopping): the write may have landed
                entry.update(done=time.time(), status=0, outcome=UNKNOWN, error="interrupted")
            record(entry)
        if entry["outcome"] != ACK:
            self._drop()
            time.sleep(ERROR_PAUSE_S)

    def write(self, entry: dict[str, Any]) -> None:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            connection = self._connect()
            entry["sent"] = time.time()
            connection.run("INSERT INTO labctl.writes (id, served_by) VALUES (:id, :node)",
                           id=entry["id"], node=self.node)
        except (pg8000.native.Error, OSError, NotConnected) as exc:
            error = exc
        outcome = ACK if error is None else outcome_of(error)
        entry.update(done=time.time(), status=200 if error is None else 0, outcome=outcome, node=self.node)
        if error is not None:
            entry["error"] = (f"{sqlstate(error)} " if sqlstate(error) else "") + str(error)[:200]
        self.environment.events.request.fire(
            request_type="SQL", name="INSERT labctl.writes", response_time=(time.perf_counter() - started) * 1000,
            response_length=0, response=Served(self.node or "none"), context={}, exception=error)
