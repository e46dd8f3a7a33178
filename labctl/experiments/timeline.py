"""Turning per-request samples into a per-second timeline, a summary, and a chart."""

from __future__ import annotations

import csv
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# X-Cache-Status values of an answer taken from Nginx's cache; MISS, EXPIRED, BYPASS and
# REVALIDATED were answered (or confirmed) by a backend.
FROM_CACHE = frozenset({"HIT", "STALE", "UPDATING"})


@dataclass(frozen=True)
class Sample:
    """One request as the load generator saw it."""

    at: float
    latency_ms: float
    backend: str
    ok: bool
    service_ms: float | None = None  # send to completion; latency_ms counts from when it was due
    status: int | None = None  # HTTP status, 0 for no answer; None in files from before the column
    cache: str = ""  # X-Cache-Status

    @property
    def from_backend(self) -> bool:
        """A good answer a backend served (not one a cache replayed with the backend's header)."""
        return self.ok and bool(self.backend) and self.cache.upper() not in FROM_CACHE

    @property
    def answered_by(self) -> str:
        """Who answered: the backend; for an answer no backend served, what did instead, or that nothing did."""
        if self.cache.upper() in FROM_CACHE:
            return "lb cache"
        if self.backend:
            return self.backend if self.ok else "backend error"
        if not self.ok:
            return "failed" if self.status is None else ("lb itself" if self.status else "no answer")
        return "lb itself" if self.status else "no X-Served-By"

    @property
    def served_ms(self) -> float:
        """Send to completion (files from before the service column: the latency)."""
        return self.latency_ms if self.service_ms is None else self.service_ms

    @property
    def sent_at(self) -> float:
        return self.at - self.served_ms / 1000.0


@dataclass
class Second:
    """One row of timeline.csv."""

    second: int
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    backends: Counter[str] = field(default_factory=Counter)


def parse_samples(lines: Iterable[str]) -> list[Sample]:
    """Parse the plugin's `time,latency,backend,ok[,service[,status,cache]]` lines (cache is "-" when
    there is none, so that a torn line ends in an empty field), skipping torn ones."""
    samples = []
    for line in lines:
        parts = line.rstrip("\n").split(",")
        if len(parts) not in (4, 5, 7) or not parts[-1]:
            continue
        try:
            service = float(parts[4]) if len(parts) >= 5 else None
            status = int(parts[5]) if len(parts) == 7 else None
            cache = parts[6].strip("-") if len(parts) == 7 else ""  # "-": no X-Cache-Status
            samples.append(Sample(float(parts[0]), float(parts[1]), parts[2], parts[3] == "1", service, status, cache))
        except ValueError:
            continue
    return samples


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def bucket(samples: list[Sample], start: float) -> list[Second]:
    """Samples grouped by whole seconds since `start`, with empty seconds kept."""
    if not samples:
        return []
    last = int(max(s.at for s in samples) - start)
    seconds = [Second(i) for i in range(last + 1)]
    for sample in samples:
        row = seconds[max(0, int(sample.at - start))]
        row.latencies.append(sample.latency_ms)
        row.failures += 0 if sample.ok else 1
        if sample.backend and sample.cache.upper() not in FROM_CACHE:
            row.backends[sample.backend] += 1
    return seconds


def write_timeline(path: Path, seconds: list[Second], backends: list[str]) -> None:
    """timeline.csv: one row per second with counts, percentiles and requests per backend."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["second", "requests", "failures", "p50_ms", "p95_ms", "p99_ms", *backends])
        for row in seconds:
            ordered = sorted(row.latencies)
            writer.writerow([
                row.second, len(ordered), row.failures,
                *(f"{percentile(ordered, q):.1f}" for q in (0.5, 0.95, 0.99)),
                *(row.backends.get(b, 0) for b in backends),
            ])


def draw_chart(path: Path, seconds: list[Second], backends: list[str], title: str) -> None:
    """A PNG of requests per second (per backend), failures, and p50/p95/p99 latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [row.second for row in seconds]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for backend in backends:
        top.plot(x, [row.backends.get(backend, 0) for row in seconds], label=backend)
    top.plot(x, [row.failures for row in seconds], label="failures", color="red", linestyle="--")
    top.set_ylabel("requests / s")
    top.legend(loc="upper right", fontsize="small")
    top.set_title(title)
    for fraction, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        bottom.plot(x, [percentile(sorted(row.latencies), fraction) for row in seconds], label=label)
    bottom.set_ylabel("latency ms")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


@dataclass(frozen=True)
class Degradation:
    """The seconds after a fault in which the service was too slow or answered too little."""

    seconds: list[int]
    steady_rps: float | None
    max_p95_ms: float

    @property
    def spans(self) -> list[list[int]]:
        """Runs of consecutive degraded seconds as [from, to) in seconds since the load started."""
        spans: list[list[int]] = []
        for second in self.seconds:
            if spans and spans[-1][1] == second:
                spans[-1][1] = second + 1
            else:
                spans.append([second, second + 1])
        return spans

    def to_json(self) -> dict[str, Any]:
        return {"degraded_s": float(len(self.seconds)),
                "degraded": {"spans": self.spans, "steady_rps": self.steady_rps, "max_p95_ms": self.max_p95_ms}}


def degradation(samples: list[Sample], start: float, fault_at_s: float | None, max_p95_ms: float) -> Degradation:
    """The per-second buckets from the fault's second on whose p95 exceeded `max_p95_ms` or whose
    answered (ok) requests fell under half the steady rate: the median of the whole seconds
    before the fault. The last bucket is left out: the load stopping in it is not the lab."""
    seconds = bucket(samples, start)
    if fault_at_s is None or not seconds:
        return Degradation([], None, max_p95_ms)
    before = [_answered(row) for row in seconds[:-1] if row.second + 1 <= fault_at_s]
    steady = round(statistics.median(before), 1) if before else None
    degraded = [row.second for row in seconds[:-1] if row.second + 1 > fault_at_s
                and (percentile(sorted(row.latencies), 0.95) > max_p95_ms
                     or (steady is not None and _answered(row) < steady / 2))]
    return Degradation(degraded, steady, max_p95_ms)


def _answered(row: Second) -> int:
    return len(row.latencies) - row.failures
