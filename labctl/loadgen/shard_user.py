"""A Locust user for the sharding lab: orders written by shard key, read back with the key
(one shard) and without it (a fan-out to every shard).

The key comes from the block's strategy (LABCTL_SHARD_STRATEGY, set by labctl): `hash`, a
customer id drawn uniformly from 1..LABCTL_SHARD_CUSTOMERS; `skewed`, a customer id drawn
from a Zipf-like distribution with exponent LABCTL_SHARD_ZIPF (customer 1 orders most);
`range`, a time-ordered order id (microseconds since the epoch). Every request ends as one
line in shard-<pid>.jsonl in LABCTL_SAMPLES_DIR: time, operation, the shard the app named in
X-Shard ("*" for a fan-out), the key (None for a fan-out), ok, latency in ms. A lab's locustfile uses it with:

    from labctl.loadgen.shard_user import ShardUser  # noqa: F401
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import deque
from typing import Any, TextIO

from locust import FastHttpUser, constant, task

from labctl.experiments.ledger import write_id
from labctl.shards.keys import shard_key

SAMPLES_DIR = os.environ.get("LABCTL_SAMPLES_DIR", ".")
RUN_ID = os.environ.get("LABCTL_RUN_ID") or os.path.basename(os.path.realpath(SAMPLES_DIR))
STRATEGY = os.environ.get("LABCTL_SHARD_STRATEGY", "hash")
WRITE, KEYED, FAN_OUT = "write", "keyed", "fan-out"
_sequence = itertools.count(1)
_files: dict[int, TextIO] = {}
def _record(entry: dict[str, Any]) -> None:
    pid = os.getpid()
    handle = _files.get(pid)
    if handle is None:
        handle = open(os.path.join(SAMPLES_DIR, f"shard-{pid}.jsonl"), "a", encoding="utf-8")  # noqa: SIM115
        _files[pid] = handle
    handle.write(json.dumps(entry) + "\n")
    handle.flush()


class ShardUser(FastHttpUser):
    """Writes orders back to back; every third request reads one back, keyed or fanned out."""

    wait_time = constant(0)
    network_timeout = 10.0
    connection_timeout = 2.0

    def on_start(self) -> None:
        self.rng = random.Random()
        self.written: deque[tuple[str, int]] = deque(maxlen=200)

    @task(4)
    def write(self) -> None:
        ident, key = write_id(RUN_ID, os.getpid(), next(_sequence)), shard_key(STRATEGY, self.rng)
        if self._request("POST", f"/shard/write?id={ident}&key={key}", "/shard/write", WRITE, key):
            self.written.append((ident, key))

    @task(1)
    def read_keyed(self) -> None:
        if self.written:
            ident, key = self.rng.choice(self.written)
            self._request("GET", f"/shard/read/{ident}?key={key}", "/shard/read keyed", KEYED, key)

    @task(1)
    def read_fan_out(self) -> None:
        if self.written:
            ident, _ = self.rng.choice(self.written)
            self._request("GET", f"/shard/read/{ident}", "/shard/read fan-out", FAN_OUT)

    def _request(self, method: str, url: str, name: str, op: str, key: int | None = None) -> bool:
        began = time.perf_counter()
        with self.client.request(method, url, name=name, catch_response=True) as response:
            status = int(getattr(response, "status_code", 0) or 0)
            headers = getattr(response, "headers", None) or {}
            ok = status == 200
            if ok:
                response.success()
            else:
                response.failure(f"{op} HTTP {status}: {(response.text or '')[:160]}")
        _record({"t": time.time(), "op": op, "shard": str(headers.get("X-Shard") or ""), "key": key, "ok": ok,
                 "ms": round((time.perf_counter() - began) * 1000, 2)})
        return ok
