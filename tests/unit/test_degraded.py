"""The degraded window of a drill: per-second buckets slower than the steady-state bound or
answering under half the steady rate, from synthetic and recorded samples."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest
from rich.console import Console

from labctl.experiments.drill_report import figures
from labctl.experiments.timeline import Sample, bucket, degradation, parse_samples

START = 1000.0


def second(at: int, requests: int, latency_ms: float = 5.0, failed: int = 0) -> list[Sample]:
    return [Sample(START + at + i / requests, latency_ms, "app-1", i >= failed) for i in range(requests)]


def test_slow_seconds_and_starved_seconds_after_the_fault_are_degraded() -> None:
    samples = [s for t in range(4) for s in second(t, 100)]
    samples += second(4, 10) + second(5, 100, failed=60) + second(6, 100, latency_ms=1500.0)
    samples += [s for t in range(7, 10) for s in second(t, 100)] + second(10, 20)  # the load stops in 10
    found = degradation(samples, START, 4.2, 1000.0)
    assert (found.seconds, found.spans, found.steady_rps) == ([4, 5, 6], [[4, 7]], 100.0)
    assert found.to_json() == {"degraded_s": 3.0,
                               "degraded": {"spans": [[4, 7]], "steady_rps": 100.0, "max_p95_ms": 1000.0}}


def test_the_second_the_fault_lands_in_counts_and_the_ones_before_do_not() -> None:
    samples = second(0, 100) + second(1, 20) + second(2, 100) + second(3, 20) + second(4, 100) + second(5, 100)
    found = degradation(samples, START, 2.5, 1000.0)
    assert found.seconds == [3] and found.steady_rps == 60.0  # the median of seconds 0 and 1
    earlier = degradation(samples, START, 1.5, 1000.0)  # second 1 holds the fault: it counts, and sets no rate
    assert (earlier.spans, earlier.steady_rps) == ([[1, 2], [3, 4]], 100.0)
    assert degradation(samples, START, None, 1000.0).seconds == []


def test_without_a_whole_second_before_the_fault_only_p95_counts() -> None:
    samples = second(0, 100) + second(1, 3) + second(2, 100, latency_ms=1200.0) + second(3, 100)
    found = degradation(samples, START, 0.5, 1000.0)
    assert (found.seconds, found.steady_rps) == ([2], None)


def test_the_report_says_what_the_degraded_window_is() -> None:
    report = {"requests": 2000, "failures": 0, "error_window_s": 0.0, "detection_s": 1.2, "recovery_s": 0.0,
              "degraded_s": 3.0, "degraded": {"spans": [[4, 6], [9, 10]], "steady_rps": 3480.5, "max_p95_ms": 1000.0}}
    rows = {name: (value, meaning) for name, value, meaning in figures(report)}
    assert rows["degraded window"][0] == "3.0 s (at 4-6 s, 9-10 s)"
    assert rows["degraded window"][1] == (
        "seconds from the first fault on with p95 over the steady-state bound of 1000.0 ms or fewer than half "
        "the steady 3480.5 answered requests/s; the last, partial second is not counted")


def replica_lag_report() -> dict[str, object]:
    steady = {"ok": True, "error_rate": 0.0, "p95_ms": 41.0, "requests": 310,
              "bound": {"max_error_rate": 0.01, "max_p95_ms": 2000.0}}
    return {"lab": "db-replication", "drill": "replica-lag", "title": "Replica lag", "verdict": "pass",
            "requests": 2400, "failures": 0, "rps": 133.3,
            "latency_ms": {"p50": 12.5, "p95": 41.0, "p99": 88.2, "max": 1204.7},
            "error_window_s": 0.0, "degraded_s": 0.0, "degraded": {"spans": [], "steady_rps": 140.0,
                                                                    "max_p95_ms": 2000.0},
            "detection_s": 0.0, "recovery_s": 0.0, "steady_state_before": steady, "steady_state_after": steady,
            "replication": {"mode": "async", "fell_back_to_async": False, "max_lag_s": 3.4},
            "failover": {"mode": "auto", "detection_s": 0.5, "promotion_s": 0.7, "reroute_s": 0.2},
            "faults": [{"at_s": 3.0, "fault": "replica-delay", "target": "db-2", "reverted_at_s": 12.0}],
            "expectations": [{"name": "max_failed_requests", "expected": 0, "observed": 0, "ok": True}]}


SCREEN = """\
drill replica-lag on db-replication: PASS
requests: 2400, failed 0 (error rate 0.0)
latency: p50 12.5, p95 41.0, p99 88.2, max 1204.7 ms at 133.3 req/s
error window: 0.0 s
degraded window: 0.0 s
detection: 0.0 s
recovery: 0.0 s
steady state before: p95 41.0 ms, error rate 0.0
steady state after: p95 41.0 ms, error rate 0.0
replication: async, largest replica lag 3.4 s
failover (auto): detection 0.5 s, promotion 0.7 s, re-route 0.2 s
  t=3.0s replica-delay db-2 (reverted at 12.0s)
"""


def test_the_numbers_a_drill_promises_are_on_screen_and_in_report_md(monkeypatch: pytest.MonkeyPatch) -> None:
    from labctl import console
    from labctl.experiments.drill_report import _markdown

    monkeypatch.setattr(console, "out", Console(record=True, width=200))
    report = replica_lag_report()
    console.show_drill(report, Path("/runs/x"))
    assert console.out.export_text().startswith(SCREEN)
    markdown = _markdown(report)
    assert markdown.startswith("# Drill replica-lag on db-replication: PASS\n\nReplica lag\n\n"
                               "- requests: 2400, failed 0 (error rate 0.0)\n"
                               "- latency: p50 12.5, p95 41.0, p99 88.2, max 1204.7 ms at 133.3 req/s "
                               "(over the whole load)\n")
    for line in ("- steady state before: p95 41.0 ms, error rate 0.0 (bound: p95 <= 2000.0 ms, error rate <= 0.01)",
                 "- replication: async, largest replica lag 3.4 s (heartbeat lag sampled while the load ran)",
                 "- failover (auto): detection 0.5 s, promotion 0.7 s, re-route 0.2 s",
                 "- degraded window: 0.0 s (seconds from the first fault on with p95 over the steady-state bound "
                 "of 2000.0 ms or fewer than half the steady 140.0 answered requests/s; the last, partial "
                 "second is not counted)"):
        assert line in markdown.splitlines()
    report["replication"] = {"mode": "semisync", "fell_back_to_async": True, "max_lag_s": None}
    assert "- replication: semisync (semi-sync fell back to async), largest replica lag - (heartbeat lag " \
           "sampled while the load ran)" in _markdown(report).splitlines()


RECORDED = Path(__file__).parent / "data" / "degraded"


def recorded(name: str) -> tuple[list[Sample], float, float]:
    """A real drill's samples (lb-haproxy and lb-nginx kill-backend, 10 users, closed model), the
    load's start (its first answer, as the drill takes it) and the fault's time."""
    with lzma.open(RECORDED / f"{name}.csv.xz", "rt", encoding="utf-8") as handle:
        samples = sorted(parse_samples(handle), key=lambda s: s.at)
    report = json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))
    return samples, samples[0].at, float(report["faults"][0]["at_s"])


def test_haproxy_stalls_while_its_checks_notice_the_dead_server() -> None:
    samples, start, fault = recorded("lb-haproxy-kill-backend")
    found = degradation(samples, start, fault, 1000.0)
    # That run's report: failed 0, error window 0.0 s, PASS. Yet from about 2,500 answers a second
    # to 30 for three seconds, until the checks marked app-2 DOWN (detection 3.16 s).
    assert [len(row.latencies) for row in bucket(samples, start)][3:9] == [2500, 440, 30, 28, 30, 1945]
    assert found.to_json() == {"degraded_s": 4.0,
                               "degraded": {"spans": [[4, 8]], "steady_rps": 2471.0, "max_p95_ms": 1000.0}}


def test_nginx_retries_at_once_so_nothing_is_degraded() -> None:
    samples, start, fault = recorded("lb-nginx-kill-backend")
    found = degradation(samples, start, fault, 1000.0)
    assert (found.seconds, found.steady_rps) == ([], 2595.5)
