"""labctl's Locust plugin, loaded by every Locust process beside the lab's locustfile.

It records one line per request: completion time, latency, the backend named in
X-Served-By, success, and the time from sending to completion. labctl builds its timeline
and per-backend spread from these files. Standard library and Locust only: this runs under gevent's monkey-patching.
"""

from __future__ import annotations

import os
import time
from typing import Any, TextIO

from locust import events

SAMPLES_DIR = os.environ.get("LABCTL_SAMPLES_DIR", ".")
_files: dict[int, TextIO] = {}
_last_flush = [0.0]


def _samples_file() -> TextIO:
    pid = os.getpid()
    handle = _files.get(pid)
    if handle is None:
        handle = open(os.path.join(SAMPLES_DIR, f"samples-{pid}.csv"), "a", buffering=1 << 16)  # noqa: SIM115
        _files[pid] = handle
    return handle


def record(response_time: float, response: Any = None, context: Any = None, exception: Any = None,
           **_: Any) -> None:
    now = time.time()
    due = (context or {}).get("due") if isinstance(context, dict) else None
    # In the open model, latency counts from when the request was due, not when it was sent.
    latency = (now - due) * 1000.0 if due else float(response_time or 0)
    headers = getattr(response, "headers", None)
    backend = (headers.get("X-Served-By") or headers.get("x-served-by") or "") if headers else ""
    handle = _samples_file()
    service = float(response_time or 0)
    handle.write(f"{now:.4f},{latency:.2f},{backend},{0 if exception else 1},{service:.2f}\n")
    if now - _last_flush[0] > 0.5:
        handle.flush()
        _last_flush[0] = now


def close(**_: Any) -> None:
    for handle in _files.values():
        handle.flush()


events.request.add_listener(record)  # type: ignore[no-untyped-call]
events.quitting.add_listener(close)  # type: ignore[no-untyped-call]
