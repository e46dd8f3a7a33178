"""A Locust user for Redis Cluster labs: unique keys SET (then read back with GET), routed by
hash slot the way a cluster-aware client does, every outcome in the same ledger as the db labs'.

The host Locust is given is node 1's published port; the user reads the slot map (CLUSTER
SLOTS) from there and sends each key to the master of its slot. The nodes announce 127.0.0.1
and listen on their published ports, so every address the cluster hands out is reachable from
the host. A `-MOVED` reply (the slot has a new owner for good) updates that slot in the map and
is followed; an `-ASK` reply (the slot is being migrated and this key is already, or will be,
on the target) is followed once with ASKING, and the map is left alone. Both are counted per
write (`moved`, `ask` in its ledger line, SET and GET together; a redirect is part of its
request, not a request of its own), so a drill can say how many redirects the load followed.

A write is `ack` on +OK (and, with LABCTL_REDIS_WAIT=N, only once `WAIT N` says N replicas
have it; fewer is `unknown`: the master has it, the replicas may not); an error reply
(`-CLUSTERDOWN`, `-TRYAGAIN`, too many redirects) or a refused connection is `failed` (Redis
executes nothing that answers an error); no answer within LABCTL_REDIS_TIMEOUT seconds (1) or
a connection dropped after sending is `unknown`. The answering node is the ledger's node. A
lab's locustfile uses it with:

    from labctl.loadgen.redis_user import RedisWriteUser  # noqa: F401
"""

from __future__ import annotations

import itertools
import os
import time
import urllib.parse
from typing import Any

from locust import User, constant, task

from labctl.experiments.ledger import ACK, FAILED, UNKNOWN, write_id
from labctl.loadgen.db_user import RUN_ID, record
from labctl.redis.resp import SLOTS, Connection, Redirect, RespError, key_slot

KEY_PREFIX = "labctl:writes:"
TIMEOUT_S = float(os.environ.get("LABCTL_REDIS_TIMEOUT", "1"))
WAIT_REPLICAS = int(os.environ.get("LABCTL_REDIS_WAIT", "0"))
WAIT_TIMEOUT_MS = 500
MAX_REDIRECTS = 5
MAX_NODES = 15
# After an error, a short pause: a cluster that is down refuses at once, and a user must not spin.
ERROR_PAUSE_S = 0.05
_sequence = itertools.count(1)


class Served:
    """What the labctl plugin reads from a response: the node, as X-Served-By."""

    def __init__(self, node: str) -> None:
        self.headers = {"X-Served-By": node}


class NotSent(Exception):
    """The command never left: no connection could be made to the node."""


class SlotMap:
    """Which published port serves each slot, learnt from CLUSTER SLOTS and from MOVED."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.owners = [base] * SLOTS

    def name(self, port: int) -> str:
        return f"redis-{port - self.base + 1}"

    def refresh(self) -> bool:
        """Read the map again from the first node that answers; False when none does."""
        for port in [*sorted(set(self.owners)), *range(self.base, self.base + MAX_NODES)]:
            try:
                connection = Connection("127.0.0.1", port, TIMEOUT_S)
                try:
                    ranges = connection.command("CLUSTER", "SLOTS")
                finally:
                    connection.close()
            except (OSError, RespError):
                continue
            for start, end, master, *_ in ranges:
                self.owners[int(start):int(end) + 1] = [int(master[1])] * (int(end) - int(start) + 1)
            return True
        return False


class RedisWriteUser(User):
    """SETs unique keys back to back, each to the master of its slot, and GETs each one back."""

    wait_time = constant(0)
    abstract = False

    def on_start(self) -> None:
        self.slots = SlotMap(urllib.parse.urlsplit(self.host or "").port or 6379)
        self.slots.refresh()
        self.connections: dict[int, Connection] = {}

    def _connection(self, port: int) -> Connection:
        if port not in self.connections:
            try:
                self.connections[port] = Connection("127.0.0.1", port, TIMEOUT_S)
            except OSError as exc:
                raise NotSent(str(exc)) from exc
        return self.connections[port]

    def _drop(self, port: int) -> None:
        connection = self.connections.pop(port, None)
        if connection is not None:
            connection.close()

    def call(self, key: str, counts: dict[str, int], *command: str | int) -> tuple[Any, int]:
        """One command for `key`, following MOVED and ASK; (reply, port of the node that answered)."""
        slot = key_slot(key)
        port, asking = self.slots.owners[slot], False
        for _ in range(MAX_REDIRECTS):
            connection = self._connection(port)
            try:
                if asking:
                    connection.command("ASKING")
                return connection.command(*command), port
            except Redirect as redirect:
                moved = redirect.code == "MOVED"
                counts["moved" if moved else "ask"] += 1
                if moved:
                    self.slots.owners[slot] = redirect.port
                port, asking = redirect.port, not moved
            except (OSError, ConnectionError):
                self._drop(port)
                raise
        raise RespError(f"TOOMANYREDIRECTS more than {MAX_REDIRECTS} redirects for slot {slot}")

    @task
    def put(self) -> None:
        entry: dict[str, Any] = {"id": write_id(RUN_ID, os.getpid(), next(_sequence)), "run": RUN_ID}
        counts = {"moved": 0, "ask": 0}
        entry["sent"] = time.time()
        try:
            self.write(entry, counts)
            if entry["outcome"] == ACK:
                self.read_back(entry, counts)
        finally:
            if "outcome" not in entry:  # interrupted (Locust stopping): the write may have landed
                entry.update(done=time.time(), status=0, outcome=UNKNOWN, error="interrupted")
            record({**entry, **counts})
        if entry["outcome"] != ACK:
            self.slots.refresh()
            time.sleep(ERROR_PAUSE_S)

    def write(self, entry: dict[str, Any], counts: dict[str, int]) -> None:
        key = KEY_PREFIX + entry["id"]
        started = time.perf_counter()
        error: BaseException | None = None
        outcome, status, port = ACK, 200, self.slots.owners[key_slot(key)]
        try:
            _, port = self.call(key, counts, "SET", key, entry["id"])
            if WAIT_REPLICAS:
                acked = int(self._connection(port).command("WAIT", WAIT_REPLICAS, WAIT_TIMEOUT_MS))
                if acked < WAIT_REPLICAS:
                    outcome, error = UNKNOWN, RuntimeError(f"WAIT: {acked} of {WAIT_REPLICAS} replicas")
        except NotSent as exc:
            outcome, status, error = FAILED, 0, exc
        except RespError as exc:
            outcome, status, error = FAILED, 503, exc
        except (OSError, ConnectionError) as exc:
            outcome, status, error = UNKNOWN, 0, exc
        entry.update(done=time.time(), status=status, outcome=outcome, node=self.slots.name(port))
        if error is not None:
            entry["error"] = str(error)[:200]
        self.environment.events.request.fire(
            request_type="SET", name="SET" if not WAIT_REPLICAS else f"SET+WAIT {WAIT_REPLICAS}",
            response_time=(time.perf_counter() - started) * 1000, response_length=0,
            response=Served(entry["node"]), context={}, exception=error)

    def read_back(self, entry: dict[str, Any], counts: dict[str, int]) -> None:
        key = KEY_PREFIX + entry["id"]
        started = time.perf_counter()
        error: BaseException | None = None
        port = self.slots.owners[key_slot(key)]
        try:
            value, port = self.call(key, counts, "GET", key)
            entry.update(read_status=200, stale=value != entry["id"])
        except (NotSent, RespError, OSError, ConnectionError) as exc:
            error = exc
            entry.update(read_status=0, stale=None)
        entry["read_node"] = self.slots.name(port)
        self.environment.events.request.fire(
            request_type="GET", name="GET", response_time=(time.perf_counter() - started) * 1000,
            response_length=0, response=Served(entry["read_node"]), context={}, exception=error)
