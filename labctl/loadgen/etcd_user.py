"""A Locust user for etcd labs: unique keys written through etcd's v3 JSON gateway
(POST /v3/kv/put, base64 key and value), every outcome in the same ledger as the db labs'.

The host Locust is given is member 1's published client port; the members answer the
member list with their names (etcd-1, etcd-2, ...) and member N listens on that port + N - 1.
Each user sticks to one member and moves to the next on any error, so writes keep flowing
while a member is down or cut off. A write is `ack` only on HTTP 200 (etcd answers once the
entry is committed by a majority and applied); no answer within LABCTL_ETCD_TIMEOUT seconds
(default 1) is `unknown`, as is any 5xx; a refused connection is `failed`. The answering
member is the sample's backend and the ledger's node.

With LABCTL_ETCD_READ_BACK=linearizable or serializable (the block's `read_back`), every
acknowledged write is read back from another member, the same one for the user's whole run:
a linearizable read goes through the leader's ReadIndex and never misses an acknowledged
write; a serializable one is answered from that member's own copy, which may not have it
yet (stale). A read without an answer within the timeout is a failed read-back. A lab's
locustfile uses it with:

    from labctl.loadgen.etcd_user import EtcdWriteUser  # noqa: F401
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import time
import urllib.parse
from typing import Any

from locust import User, constant, task

from labctl.experiments.ledger import ACK, UNKNOWN, write_id, write_outcome
from labctl.loadgen.db_user import RUN_ID, record

KEY_PREFIX = "labctl/writes/"
TIMEOUT_S = float(os.environ.get("LABCTL_ETCD_TIMEOUT", "1"))
READ_BACK = os.environ.get("LABCTL_ETCD_READ_BACK", "off")
# After an error, a short pause: a member without a leader refuses at once, and a user must
# not spin on it.
ERROR_PAUSE_S = 0.05
MAX_MEMBERS = 5
_sequence = itertools.count(1)
_user_numbers = itertools.count()


class Served:
    """What the labctl plugin reads from a response: the member, as X-Served-By."""

    def __init__(self, member: str) -> None:
        self.headers = {"X-Served-By": member}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def discover(host: str) -> list[tuple[str, int]]:
    """(name, port) of every member, from the first one of the consecutive ports that answers."""
    base = urllib.parse.urlsplit(host).port or 2379
    for port in range(base, base + MAX_MEMBERS):
        try:
            status, body = post(port, "/v3/cluster/member/list", {}, TIMEOUT_S)
        except OSError:
            continue
        if status == 200:
            names = sorted(str(m["name"]) for m in body.get("members", []) if m.get("name"))
            return [(name, base + int(name.rsplit("-", 1)[1]) - 1) for name in names]
    return [(f"member-{i + 1}", base + i) for i in range(3)]


def post(port: int, path: str, body: dict[str, Any], timeout: float,
         connection: http.client.HTTPConnection | None = None) -> tuple[int, dict[str, Any]]:
    """One JSON POST to 127.0.0.1:port; (status, JSON body)."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    text = response.read()
    if connection is None:
        conn.close()
    try:
        parsed = json.loads(text or b"{}")
    except ValueError:
        parsed = {}
    return response.status, parsed if isinstance(parsed, dict) else {}


class EtcdWriteUser(User):
    """Writes unique keys back to back to one member, failing over to the next on errors."""

    wait_time = constant(0)
    abstract = False

    def on_start(self) -> None:
        self.members = discover(self.host or "")
        number = next(_user_numbers)
        self.current = number % len(self.members)
        self.reader = (number + 1) % len(self.members)
        self.connection: http.client.HTTPConnection | None = None
        self.read_connection: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.connection is None:
            port = self.members[self.current][1]
            self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        return self.connection

    def _fail_over(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None
        self.current = (self.current + 1) % len(self.members)

    @task
    def put(self) -> None:
        entry: dict[str, Any] = {"id": write_id(RUN_ID, os.getpid(), next(_sequence)), "run": RUN_ID}
        entry["sent"] = time.time()
        try:
            self.write(entry)
            if READ_BACK != "off" and entry["outcome"] == ACK:
                self.read_back(entry)
        finally:
            if "outcome" not in entry:  # interrupted (Locust stopping): the write may have landed
                entry.update(done=time.time(), status=0, outcome=UNKNOWN, error="interrupted")
            record(entry)
        if entry["outcome"] != ACK:
            self._fail_over()
            time.sleep(ERROR_PAUSE_S)

    def write(self, entry: dict[str, Any]) -> None:
        member = self.members[self.current][0]
        body = {"key": _b64(KEY_PREFIX + entry["id"]), "value": _b64(entry["id"])}
        started = time.perf_counter()
        error: BaseException | None = None
        status, refused = 0, False
        answer: dict[str, Any] = {}
        try:
            status, answer = post(0, "/v3/kv/put", body, TIMEOUT_S, self._connection())
        except (OSError, http.client.HTTPException) as exc:
            error, refused = exc, isinstance(exc, ConnectionRefusedError)
        outcome = write_outcome(status, None, refused)
        entry.update(done=time.time(), status=status, outcome=outcome, node=member)
        if outcome != ACK:
            entry["error"] = str(answer.get("message") or answer.get("error") or error or f"HTTP {status}")[:200]
            error = error or RuntimeError(entry["error"])
        self.environment.events.request.fire(
            request_type="POST", name="/v3/kv/put", response_time=(time.perf_counter() - started) * 1000,
            response_length=0, response=Served(member), context={}, exception=error)

    def read_back(self, entry: dict[str, Any]) -> None:
        member, port = self.members[self.reader]
        body = {"key": _b64(KEY_PREFIX + entry["id"]), "serializable": READ_BACK == "serializable"}
        started = time.perf_counter()
        error: BaseException | None = None
        status = 0
        answer: dict[str, Any] = {}
        try:
            if self.read_connection is None:
                self.read_connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
            status, answer = post(0, "/v3/kv/range", body, TIMEOUT_S, self.read_connection)
        except (OSError, http.client.HTTPException) as exc:
            error, self.read_connection = exc, None
        entry.update(read_status=status, read_node=member, read_done=time.time())
        # The gateway leaves out "kvs" when the key is not there.
        entry["stale"] = not answer.get("kvs") if status == 200 else None
        if status != 200:
            error = error or RuntimeError(str(answer.get("message") or f"HTTP {status}")[:200])
        self.environment.events.request.fire(
            request_type="POST", name=f"/v3/kv/range ({READ_BACK})",
            response_time=(time.perf_counter() - started) * 1000, response_length=0, response=Served(member),
            context={}, exception=error)
