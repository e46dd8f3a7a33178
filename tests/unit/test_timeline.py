"""Load-run arithmetic without Docker: samples, percentiles, per-second buckets."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import UsageError
from labctl.experiments.load import LoadOptions, failure_kinds, parse_processes, summarize
from labctl.experiments.timeline import Sample, bucket, parse_samples, percentile


def test_parse_processes() -> None:
    assert parse_processes("3") == 3
    assert parse_processes("auto") >= 1
    with pytest.raises(UsageError):
        parse_processes("0")


def test_parse_samples_skips_torn_lines() -> None:
    lines = ["100.5,12.0,app-1,1\n", "100.9,30.5,,0\n", "101.2,1", "garbage,x,y,1\n"]
    assert parse_samples(lines) == [Sample(100.5, 12.0, "app-1", True), Sample(100.9, 30.5, "", False)]


def test_parse_samples_reads_the_service_time_when_there_is_one() -> None:
    late, old = parse_samples(["100.5,812.0,app-1,1,2.0\n", "101.0,12.0,app-2,1\n"])
    assert (late.latency_ms, late.served_ms, late.sent_at) == (812.0, 2.0, 100.498)
    assert (old.served_ms, old.sent_at) == (12.0, 100.988)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.95) == 95 and percentile(values, 0.99) == 99
    assert percentile([], 0.5) == 0.0


def test_bucket_keeps_empty_seconds() -> None:
    samples = [Sample(10.1, 5, "app-1", True), Sample(10.7, 7, "app-2", True), Sample(12.3, 9, "", False)]
    rows = bucket(samples, 10.0)
    assert [len(r.latencies) for r in rows] == [2, 0, 1]
    assert rows[2].failures == 1 and dict(rows[0].backends) == {"app-1": 1, "app-2": 1}


def test_summary_fields_and_shares() -> None:
    samples = [Sample(100 + i * 0.01, float(i), f"app-{i % 3 + 1}", True) for i in range(300)]
    summary = summarize("lb-nginx", "run", samples, LoadOptions(users=5), cpu_seconds=0.5, wall=3.0)
    assert summary["requests"] == 300 and summary["failures"] == 0
    assert summary["backends"] == {"app-1": 100, "app-2": 100, "app-3": 100}
    assert summary["backend_share"] == {"app-1": 0.3333, "app-2": 0.3333, "app-3": 0.3333}
    assert summary["latency_ms"]["max"] == 299
    assert summary["load_gen_bound"] is False
    bound = summarize("lb-nginx", "run", samples, LoadOptions(users=5), cpu_seconds=2.9, wall=3.0)
    assert bound["load_gen_bound"] is True


def test_failure_kinds_names_the_most_frequent_reasons_first(tmp_path: Path) -> None:
    (tmp_path / "locust_failures.csv").write_text(
        "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
        "GET,/,HTTPError('502 Bad Gateway'),2,1,2\n"
        "GET,/,ConnectionResetError(104),7,1,2\n", encoding="utf-8")
    kinds = failure_kinds(tmp_path)
    assert [k["count"] for k in kinds] == [7, 2]
    assert kinds[0] == {"error": "ConnectionResetError(104)", "request": "GET /", "count": 7}


def test_failure_kinds_is_empty_without_a_failures_file(tmp_path: Path) -> None:
    assert failure_kinds(tmp_path) == []


def test_parse_samples_reads_status_and_cache_status() -> None:
    hit, miss, refused = parse_samples(["100.5,1.0,app-1,1,1.0,200,HIT\n", "100.6,9.0,app-2,1,9.0,200,MISS\n",
                                        "100.7,3.0,,0,3.0,0,-\n", "100.8,3.0,app-1,1,3.0,200,"])
    assert (hit.status, hit.cache, hit.from_backend, hit.answered_by) == (200, "HIT", False, "lb cache")
    assert (miss.from_backend, miss.answered_by) == (True, "app-2")
    assert (refused.cache, refused.answered_by) == ("", "no answer")


def test_answers_no_backend_served_are_counted_apart() -> None:
    served = [Sample(100 + i * 0.01, 5.0, f"app-{i % 2 + 1}", True, 5.0, 200, "MISS") for i in range(10)]
    cached = [Sample(101 + i * 0.01, 1.0, "app-1", True, 1.0, 200, "HIT") for i in range(85)]
    limited = [Sample(102, 1.0, "", False, 1.0, 429, ""), Sample(102, 1.0, "", False, 1.0, 403, "")]
    static = [Sample(102, 1.0, "", True, 1.0, 200, "")]
    refused = [Sample(102, 1.0, "", False, 1.0, 0, "")]
    broken = [Sample(102, 1.0, "app-2", False, 1.0, 500, "")]
    summary = summarize("nginx-features", "run", served + cached + limited + static + refused + broken,
                        LoadOptions(), cpu_seconds=0.1, wall=3.0)
    assert summary["backends"] == {"app-1": 5, "app-2": 5}
    assert summary["backend_share"] == {"app-1": 0.5, "app-2": 0.5}
    assert summary["not_from_a_backend"] == {"lb cache": 85, "lb itself": 3, "no answer": 1, "backend error": 1}
    assert sum(summary["backends"].values()) + sum(summary["not_from_a_backend"].values()) == summary["requests"]
    assert [row.backends for row in bucket(served + cached, 100)][1] == {}  # cache hits are no backend's traffic


def test_failure_kinds_add_up_the_plugin_counts_of_every_process(tmp_path: Path) -> None:
    # Locust's own file, written once a second, missed the last second: the plugin's counts win.
    (tmp_path / "locust_failures.csv").write_text(
        "Method,Name,Error,Occurrences,First Seen,Last Seen\nGET,/,LocustBadStatusCode(code=429),90,1,2\n",
        encoding="utf-8")
    header = "Method,Name,Error,Occurrences\n"
    (tmp_path / "failures-11.csv").write_text(header + "GET,/,LocustBadStatusCode(code=429),60\n"
                                              'GET,/,"ConnectionRefusedError(111, \'refused\')",2\n', encoding="utf-8")
    (tmp_path / "failures-12.csv").write_text(header + "GET,/,LocustBadStatusCode(code=429),40\n", encoding="utf-8")
    assert failure_kinds(tmp_path) == [
        {"error": "LocustBadStatusCode(code=429)", "request": "GET /", "count": 100},
        {"error": "ConnectionRefusedError(111, 'refused')", "request": "GET /", "count": 2}]


def test_failure_kinds_past_the_limit_are_one_row(tmp_path: Path) -> None:
    rows = "".join(f"GET,/{i},Error{i},{10 - i}\n" for i in range(8))
    (tmp_path / "failures-1.csv").write_text("Method,Name,Error,Occurrences\n" + rows, encoding="utf-8")
    kinds = failure_kinds(tmp_path, limit=5)
    assert [k["count"] for k in kinds] == [10, 9, 8, 7, 6, 5 + 4 + 3]
    assert kinds[-1] == {"error": "3 other reasons", "request": "any", "count": 12}
