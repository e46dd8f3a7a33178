"""labctl's Locust plugin, loaded by every Locust process beside the lab's locustfile.

It records one line per request: completion time, latency, the backend named in
X-Served-By, success, the time from sending to completion, the HTTP status (0: no answer)
and X-Cache-Status. labctl builds its timeline
and per-backend spread from these files. Each process also counts its failures by reason
(failures-PID.csv, written when it quits): Locust's own locust_failures.csv is written once
a second and misses the last second's failures, so it would not add up to the samples.
Standard library and Locust only: this runs under gevent's monkey-patching.
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from typing import Any, TextIO

from locust import events
from locust.stats import StatsError

SAMPLES_DIR = os.environ.get("LABCTL_SAMPLES_DIR", ".")
_files: dict[int, TextIO] = {}
_last_flush = [0.0]
_failures: Counter[tuple[str, str, str]] = Counter()


def _samples_file() -> TextIO:
    pid = os.getpid()
    handle = _files.get(pid)
    if handle is None:
        handle = open(os.path.join(SAMPLES_DIR, f"samples-{pid}.csv"), "a", buffering=1 << 16)  # noqa: SIM115
        _files[pid] = handle
    return handle


def _header(headers: Any, name: str) -> str:
    return str(headers.get(name) or headers.get(name.lower()) or "") if headers else ""


def record(response_time: float, response: Any = None, context: Any = None, exception: Any = None,
           request_type: str = "", name: str = "", **_: Any) -> None:
    now = time.time()
    due = (context or {}).get("due") if isinstance(context, dict) else None
    # In the open model, latency counts from when the request was due, not when it was sent.
    latency = (now - due) * 1000.0 if due else float(response_time or 0)
    headers = getattr(response, "headers", None)
    backend = _header(headers, "X-Served-By")
    # Who answered: a cached answer carries the X-Served-By of the backend that served it once.
    status = int(getattr(response, "status_code", 0) or 0)
    cache = _header(headers, "X-Cache-Status") or "-"
    handle = _samples_file()
    service = float(response_time or 0)
    handle.write(f"{now:.4f},{latency:.2f},{backend},{0 if exception else 1},{service:.2f},{status},{cache}\n")
    if exception:
        _failures[(request_type, name, StatsError.parse_error(exception))] += 1
    if now - _last_flush[0] > 0.5:
        handle.flush()
        _last_flush[0] = now


def close(**_: Any) -> None:
    for handle in _files.values():
        handle.flush()
    if _failures:
        with open(os.path.join(SAMPLES_DIR, f"failures-{os.getpid()}.csv"), "w", newline="") as failures:
            writer = csv.writer(failures)
            writer.writerow(["Method", "Name", "Error", "Occurrences"])
            writer.writerows([*key, count] for key, count in _failures.items())


events.request.add_listener(record)  # type: ignore[no-untyped-call]
events.quitting.add_listener(close)  # type: ignore[no-untyped-call]
