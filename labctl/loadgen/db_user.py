"""A Locust user for DB labs: unique writes through POST /write, each outcome in a ledger.

Each write gets an id unique to the run, process and sequence, goes through Locust (so
the samples and timeline see it), and ends as one JSON line in ledger-<pid>.jsonl in
LABCTL_SAMPLES_DIR: id, time sent and done, HTTP status, outcome (ack, failed or
unknown; see labctl.experiments.ledger.write_outcome) and the MySQL node that answered. After an ack
the id is read back through GET /read/<id> (a replica) and the line says whether that
read was stale. A lab's locustfile uses it with:

    from labctl.loadgen.db_user import DbWriteUser  # noqa: F401

LABCTL_DB_READ_BACK=0 turns the read-back off; LABCTL_RUN_ID overrides the run part of
the ids (by default the run folder's name); LABCTL_DB_TIMEOUT is the client's timeout in
seconds (20: above the app's own, so the app speaks first).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any, TextIO

from locust import FastHttpUser, constant, task

from labctl.experiments.ledger import ACK, UNKNOWN, write_id, write_outcome

SAMPLES_DIR = os.environ.get("LABCTL_SAMPLES_DIR", ".")
RUN_ID = os.environ.get("LABCTL_RUN_ID") or os.path.basename(os.path.realpath(SAMPLES_DIR))
READ_BACK = os.environ.get("LABCTL_DB_READ_BACK", "1") != "0"
TIMEOUT_S = float(os.environ.get("LABCTL_DB_TIMEOUT", "20"))
_sequence = itertools.count(1)
_files: dict[int, TextIO] = {}


def ledger_file() -> TextIO:
    """This process's ledger file (a forked Locust worker opens its own)."""
    pid = os.getpid()
    handle = _files.get(pid)
    if handle is None:
        handle = open(os.path.join(SAMPLES_DIR, f"ledger-{pid}.jsonl"), "a", encoding="utf-8")  # noqa: SIM115
        _files[pid] = handle
    return handle


def record(entry: dict[str, Any]) -> None:
    # One flushed line per write: a killed load generator loses at most the line under way.
    handle = ledger_file()
    handle.write(json.dumps(entry) + "\n")
    handle.flush()


def answer(response: Any) -> tuple[int, dict[str, Any], str]:
    """Status, JSON body ({} when none) and X-DB-Node of a FastHttpUser response."""
    status = int(getattr(response, "status_code", 0) or 0)
    body: dict[str, Any] = {}
    if status:
        try:
            parsed = json.loads(response.text or "")
            body = parsed if isinstance(parsed, dict) else {}
        except (ValueError, TypeError):
            body = {}
    headers = getattr(response, "headers", None) or {}
    return status, body, str(headers.get("X-DB-Node") or body.get("db_node") or "")


def error_of(response: Any) -> BaseException | None:
    error = getattr(response, "error", None)
    return error if isinstance(error, BaseException) else None


class DbWriteUser(FastHttpUser):
    """Writes unique ids back to back, reading each acknowledged one back from a replica."""

    wait_time = constant(0)
    network_timeout = TIMEOUT_S
    connection_timeout = 2.0

    @task
    def write_and_read_back(self) -> None:
        entry: dict[str, Any] = {"id": write_id(RUN_ID, os.getpid(), next(_sequence)), "run": RUN_ID}
        entry["sent"] = time.time()
        try:
            self.write(entry)
            if READ_BACK and entry["outcome"] == ACK:
                self.read_back(entry)
        finally:
            if "outcome" not in entry:  # interrupted (Locust stopping): the write may have landed
                entry.update(done=time.time(), status=0, outcome=UNKNOWN, error="interrupted")
            record(entry)

    def write(self, entry: dict[str, Any]) -> None:
        with self.client.post(f"/write?id={entry['id']}", name="/write", catch_response=True) as response:
            status, body, node = answer(response)
            error = error_of(response)
            outcome = write_outcome(status, body.get("outcome"), isinstance(error, ConnectionRefusedError))
            entry.update(done=time.time(), status=status, outcome=outcome, node=node)
            if outcome == ACK:
                response.success()
                return
            entry["error"] = str(body.get("error") or error or f"HTTP {status}")[:200]
            response.failure(f"write {outcome}: {entry['error']}")

    def read_back(self, entry: dict[str, Any]) -> None:
        with self.client.get(f"/read/{entry['id']}", name="/read/[id]", catch_response=True) as response:
            status, body, node = answer(response)
            entry.update(read_status=status, read_node=node)
            if status == 200 or (status == 404 and body.get("found") is False):
                # A stale read is the replica's lag showing, not a failed request.
                entry["stale"] = status == 404
                response.success()
            else:
                entry["stale"] = None
                response.failure(f"read-back failed: HTTP {status} {body.get('error') or error_of(response) or ''}")
