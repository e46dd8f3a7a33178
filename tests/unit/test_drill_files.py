"""Drill files: validation errors with file, line and field; the measures of a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabConfigError
from labctl.experiments.drill import drill_names, evaluate, load_drill, measure
from labctl.experiments.timeline import Sample
from labctl.model.lab import list_lab_names


@pytest.mark.parametrize(("lab", "name"), [(lab, d) for lab in list_lab_names() for d in drill_names(lab)])
def test_shipped_drills_validate(lab: str, name: str) -> None:
    drill = load_drill(lab, name)
    assert drill.title and drill.steps


def test_bad_drill_reports_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x" / "drills").mkdir(parents=True)
    (tmp_path / "x" / "lab.yaml").write_text("title: t\nsummary: s\napp: {kind: app}\n")
    (tmp_path / "x" / "drills" / "bad.yaml").write_text(
        "title: bad\nload: {duration: 10s}\nsteps:\n  - {at: 2s, fault: explode, target: app}\n"
        "  - {at: 5s}\nexpect:\n  max_failed: 0\n")
    monkeypatch.setenv("LABCTL_LABS_DIR", str(tmp_path))
    with pytest.raises(LabConfigError) as info:
        load_drill("x", "bad")
    assert [str(p) for p in info.value.problems] == [
        "labs/x/drills/bad.yaml:7 expect.max_failed: unknown key 'max_failed', did you mean 'max_failed_requests'?",
        "labs/x/drills/bad.yaml:4 steps[0].fault: expected one of kill, stop, start, restart, pause, unpause, "
        "partition, loss, bandwidth, latency, slow, fail, cpu-hog, replica-delay, drop-table, withdraw, got 'explode'",
    ]
    (tmp_path / "x" / "drills" / "late.yaml").write_text(
        "title: late\nload: {duration: 10s}\nsteps:\n  - {at: 12s, heal: true}\n  - {at: 1s}\n")
    with pytest.raises(LabConfigError) as info:
        load_drill("x", "late")
    assert [str(p) for p in info.value.problems] == [
        "labs/x/drills/late.yaml:4 steps[0].at: expected a time before the end of the load (10s)",
        "labs/x/drills/late.yaml:5 steps[1]: a step needs one of: fault (with a target), heal, failover, "
        "backup, restore, conflicting_updates, duplicate_key, reshard",
    ]


def test_measure_error_window_and_recovery() -> None:
    start = 1000.0
    ok = [Sample(start + t / 10, 5.0, "app-1", True) for t in range(0, 100)]
    failed = [Sample(start + 4.2, 5.0, "", False), Sample(start + 5.7, 5.0, "", False)]
    measured = measure(ok + failed, start, [{"at_s": 4.0}], 0.01)
    assert measured == {"error_window_s": 1.5, "recovery_s": 2.0}
    assert measure(ok, start, [{"at_s": 4.0}], 0.01) == {"error_window_s": 0.0, "recovery_s": 0.0}


def test_expectations_are_evaluated() -> None:
    summary = {"failures": 3, "requests": 100, "latency_ms": {"p95": 80.0}}
    rows = evaluate({"max_failed_requests": 0, "max_error_rate": 0.05, "recovery_within": "2s"}, summary,
                    {"recovery_s": 3.0})
    assert [(r["name"], r["observed"], r["ok"]) for r in rows] == [
        ("max_failed_requests", 3, False), ("max_error_rate", 0.03, True), ("recovery_within", 3.0, False)]


def test_max_degraded_s_is_a_number_of_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x" / "drills").mkdir(parents=True)
    (tmp_path / "x" / "lab.yaml").write_text("title: t\nsummary: s\napp: {kind: app}\n")
    steps = "title: t\nload: {duration: 10s}\nsteps:\n  - {at: 2s, fault: kill, target: app}\n"
    (tmp_path / "x" / "drills" / "ok.yaml").write_text(steps + "expect: {max_degraded_s: 2.5}\n")
    (tmp_path / "x" / "drills" / "bad.yaml").write_text(
        steps + "expect:\n  max_degraded_s: 3s\n  max_degraded: 1\n  max_failed_requests: -1\n")
    monkeypatch.setenv("LABCTL_LABS_DIR", str(tmp_path))
    assert load_drill("x", "ok").expect == {"max_degraded_s": 2.5}
    with pytest.raises(LabConfigError) as info:
        load_drill("x", "bad")
    assert sorted(str(p) for p in info.value.problems) == [
        "labs/x/drills/bad.yaml:6 expect.max_degraded_s: expected a number >= 0, got '3s'",
        "labs/x/drills/bad.yaml:7 expect.max_degraded: unknown key 'max_degraded', did you mean 'max_degraded_s'?",
        "labs/x/drills/bad.yaml:8 expect.max_failed_requests: expected an integer >= 0, got -1",
    ]


def test_max_degraded_s_is_evaluated() -> None:
    summary = {"failures": 0, "requests": 100, "latency_ms": {"p95": 80.0}}
    rows = evaluate({"max_degraded_s": 2}, summary, {"recovery_s": 0.0, "degraded_s": 3.0})
    assert [(r["name"], r["expected"], r["observed"], r["ok"]) for r in rows] == [("max_degraded_s", 2, 3.0, False)]
    assert evaluate({"max_degraded_s": 3}, summary, {"recovery_s": 0.0, "degraded_s": 3.0})[0]["ok"] is True


def test_the_chart_title_names_the_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labctl.experiments import drill, drill_report

    titles: list[str] = []
    monkeypatch.setattr(drill_report, "_draw", lambda path, report, *_: titles.append(drill_report.chart_title(report)))
    loaded = drill.Drill("kill-backend", tmp_path, "t", "", {}, {}, [], {"max_failed_requests": 0})
    steady = {"ok": True, "error_rate": 0.0, "p95_ms": 5.0, "requests": 300,
              "bound": {"max_error_rate": 0.01, "max_p95_ms": 1000.0}}
    summary = {"requests": 1000, "failures": 0, "rps": 100.0, "backends": {}, "model": "closed", "users": 10,
               "target_rps": None, "duration_s": 10.0, "latency_ms": {"p50": 4.0, "p95": 5.0, "p99": 6.0, "max": 9.0}}
    samples = [Sample(1000.0 + i / 100, 5.0, "app-1", True) for i in range(1000)]
    faults = [{"at": 1004.0, "fault": "kill", "target": "app-2", "id": "x", "reverted_at": 1008.0}]
    result = drill._finish(drill.DrillResult(tmp_path), "lb-haproxy", loaded, None, steady, steady, samples,
                           faults, (summary, 1000.0))
    assert result.verdict == "pass" and titles == ["lb-haproxy / kill-backend: PASS"]
    assert drill_report.chart_title({"lab": "lb-haproxy", "drill": "kill-backend"}) == "lb-haproxy / kill-backend"


def test_an_expectation_two_kinds_share_is_answered_by_the_kind_that_measured_it() -> None:
    summary = {"failures": 0, "requests": 100, "latency_ms": {"p95": 80.0}}
    galera = {"recovery_s": 0.0, "galera": {"rejoin": {"seconds": 4.9}}}
    group = {"recovery_s": 0.0, "group": {"rejoin": {"seconds": 15.6}}}
    assert evaluate({"rejoin_within": "60s"}, summary, galera)[0]["observed"] == 4.9
    assert evaluate({"rejoin_within": "60s"}, summary, group)[0]["observed"] == 15.6
    assert evaluate({"rejoin_within": "60s"}, summary, {"recovery_s": 0.0})[0]["ok"] is False


def test_a_drill_for_another_shape_of_the_lab_names_the_up_that_gives_it() -> None:
    from labctl.errors import LabctlError
    from labctl.experiments.drill import refuse_other_shape
    from labctl.model.lab import load_lab
    from labctl.model.overrides import parse_overrides
    from labctl.running import RunningLab

    drill = load_drill("db-galera", "two-nodes-plus-arbitrator")
    with pytest.raises(LabctlError) as info:
        refuse_other_shape(RunningLab(load_lab("db-galera"), {}), drill)
    assert str(info.value) == (
        "drill 'two-nodes-plus-arbitrator' needs lab 'db-galera' up with galera.nodes=2, galera.arbitrator=true "
        "(it runs with galera.nodes=3, galera.arbitrator=false); run 'labctl up db-galera --set galera.nodes=2 "
        "--set galera.arbitrator=true' first ('labctl up db-galera' goes back to the lab file's values)")
    shaped = load_lab("db-galera", parse_overrides(["galera.nodes=2", "galera.arbitrator=true"]))
    refuse_other_shape(RunningLab(shaped, {}), drill)
