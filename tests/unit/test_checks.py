"""Checkpoint files: every shipped checks.yaml validates; bad ones report every problem with
file, line, checkpoint and field; expectations are judged against measured figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labctl.errors import LabConfigError, LabctlError
from labctl.experiments.check import figures_of, judge, select
from labctl.experiments.checkfile import FIGURES, Expectation, has_checks, load_checks, parse_reference
from labctl.model.lab import list_lab_names

SHIPPED = [lab for lab in list_lab_names() if has_checks(lab)]
@pytest.mark.parametrize("lab", SHIPPED)
def test_shipped_checks_validate(lab: str) -> None:
    checkpoints = load_checks(lab)
    assert len(checkpoints) >= 2
    for checkpoint in checkpoints:
        assert checkpoint.question and checkpoint.answer, f"{lab} {checkpoint.id}: a question and its answer"
        runs = {run.name: run.measurement for run in checkpoint.runs}
        for expectation in checkpoint.expect:
            for reference in expectation.figures:
                run, _, figure = parse_reference(reference)
                assert figure in FIGURES[runs[run]]


@pytest.mark.parametrize("lab", SHIPPED)
@pytest.mark.parametrize("guide", ["README.md", "README.ko.md"])
def test_every_checkpoint_is_asked_by_the_guide_in_both_languages(lab: str, guide: str) -> None:
    text = (Path(__file__).resolve().parents[2] / "labs" / lab / guide).read_text(encoding="utf-8")
    for checkpoint in load_checks(lab):
        assert f"labctl check {lab} {checkpoint.id}" in text, f"{lab}'s {guide} never asks {checkpoint.id}"


LAB = "title: t\nsummary: s\napp: {kind: app}\nlb: {kind: nginx, backends: app, publish: {http: 18080}}\n"
DRILL = ("title: d\nload: {duration: 10s}\nsteps:\n  - {at: 2s, fault: kill, target: app.1}\n"
         "  - {at: 5s, heal: true}\n")
BAD_CHECKS = """\
checkpoints:
  spread:
    question: What share does each replica get?
    answer: A third.
    runs:
      one: {load: {users: 0, endpoint: web}}
      two: {drill: explode}
      grid: {sweep: {set: {app.replicas: [1, 2]}}}
    expect:
      - {figure: one.max_share, between: [0.3, 0.4]}
      - {figure: three.rps, between: [1, 2]}
      - {figure: one.error_rate, between: [0.5, 2]}
      - {ratio: [grid.rps, one.rps], between: [2, 1]}
      - {figure: grid@8.rps, between: [1, 2]}
      - {increasing: [one.rps, two.rps], between: [1, 2]}
      - {figure: one.rps}
  Bad_Id:
    question: q
"""


@pytest.fixture()
def lab_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "x"
    (folder / "drills").mkdir(parents=True)
    (folder / "lab.yaml").write_text(LAB, encoding="utf-8")
    (folder / "drills" / "kill.yaml").write_text(DRILL, encoding="utf-8")
    monkeypatch.setenv("LABCTL_LABS_DIR", str(tmp_path))
    return folder


def problems(folder: Path, text: str) -> list[str]:
    (folder / "checks.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(LabConfigError) as info:
        load_checks("x")
    return [str(p) for p in info.value.problems]


def test_schema_problems_come_all_at_once_with_line_and_field(lab_with: Path) -> None:
    assert problems(lab_with, BAD_CHECKS) == [
        "labs/x/checks.yaml:17 checkpoints.Bad_Id: expected a name of lowercase letters, digits and dashes, "
        "like kill-backend, got 'Bad_Id'",
        "labs/x/checks.yaml:17 checkpoints.Bad_Id: missing required key 'runs'",
        "labs/x/checks.yaml:6 checkpoints.spread.runs.one.load.users: expected an integer from 1 to 1000, got 0",
    ]


def test_meaning_problems_name_the_checkpoint_and_field(lab_with: Path) -> None:
    text = BAD_CHECKS.replace("users: 0, ", "").split("  Bad_Id")[0]
    assert problems(lab_with, text) == [
        "labs/x/checks.yaml:6 checkpoints.spread.runs.one.load.endpoint: lab 'x' publishes no endpoint 'web' "
        "(endpoints: http)",
        "labs/x/checks.yaml:7 checkpoints.spread.runs.two.drill: lab 'x' has no drill 'explode' (drills: kill)",
        "labs/x/checks.yaml:10 checkpoints.spread.expect[0].figure: a load has no figure 'max_share' (figures: "
        + ", ".join(FIGURES["load"]) + ")",
        "labs/x/checks.yaml:11 checkpoints.spread.expect[1].figure: no run 'three' in this checkpoint "
        "(runs: one, two, grid)",
        "labs/x/checks.yaml:12 checkpoints.spread.expect[2].between: error_rate is a fraction from 0 to 1, "
        "got [0.5, 2]",
        "labs/x/checks.yaml:13 checkpoints.spread.expect[3].ratio[0]: 'grid' is a sweep: name one of its "
        "values, like grid@1.rps (values: 1, 2)",
        "labs/x/checks.yaml:13 checkpoints.spread.expect[3].between: expected [low, high] with low <= high, "
        "got [2, 1]",
        "labs/x/checks.yaml:14 checkpoints.spread.expect[4].figure: 'grid' is a sweep: name one of its values, "
        "like grid@1.rps (values: 1, 2)",
        "labs/x/checks.yaml:15 checkpoints.spread.expect[5].between: an ordering takes no range (increasing "
        "compares the figures)",
        "labs/x/checks.yaml:16 checkpoints.spread.expect[6]: missing required key 'between': the range figure "
        "must fall in",
    ]


def test_a_sweep_of_a_parameter_the_lab_refuses_is_a_problem(lab_with: Path) -> None:
    text = ("checkpoints:\n  grow:\n    question: q\n    runs:\n      grid: {sweep: {set: {app.replicas: [1, 99]}}}\n"
            "    expect:\n      - {increasing: [grid@1.rps, grid@99.rps]}\n")
    [problem] = problems(lab_with, text)
    assert problem.startswith("labs/x/checks.yaml:5 checkpoints.grow.runs.grid.sweep.set.app.replicas: "
                              "app.replicas=99: ")
    assert "expected an integer from 1 to 32, got 99" in problem


def test_a_lab_without_checks_and_an_unknown_checkpoint_are_clear(lab_with: Path) -> None:
    with pytest.raises(LabctlError, match=r"lab 'x' has no checkpoints \(no labs/x/checks.yaml\)"):
        select("x", None)
    (lab_with / "checks.yaml").write_text(
        "checkpoints:\n  one:\n    question: q\n    runs: {a: {load: {}}}\n    expect: [{figure: a.rps, "
        "between: [1, 2]}]\n  two:\n    question: q\n    runs: {a: {drill: kill}}\n    expect: [{figure: "
        "a.passed, between: [1, 1]}]\n", encoding="utf-8")
    assert [c.id for c in select("x", None)] == ["one", "two"]
    with pytest.raises(LabctlError, match=r"lab 'x' has no checkpoint 'three' \(checkpoints: one, two\)"):
        select("x", "three")


SUMMARY = {"rps": 900.0, "latency_ms": {"p50": 2.0, "p95": 9.0, "p99": 20.0}, "requests": 1000, "failures": 10,
           "backends": {"app-1": 500, "app-2": 250, "app-3": 250},
           "db": {"stale_reads": {"reads": 400, "stale": 100}, "writes": {"lost": 0}}}


def test_figures_are_read_from_a_load_summary() -> None:
    figures = figures_of("load", SUMMARY)
    assert figures["max_backend_share"] == 0.5 and figures["min_backend_share"] == 0.25
    assert figures["error_rate"] == 0.01 and figures["stale_read_share"] == 0.25 and figures["lost_writes"] == 0
    assert figures_of("load", {**SUMMARY, "db": None})["stale_read_share"] is None


def test_ranges_ratios_and_orderings_are_judged() -> None:
    figures: dict[str, dict[str, Any]] = {"a": {"rps": 100.0, "share": 0.5}, "b": {"rps": 80.0},
                                          "s": {"1": {"rps": 40}, "2": {"rps": 90}}}
    in_range = judge(Expectation("figure", ("a.share",), (0.4, 0.6), ""), figures)
    assert in_range["passed"] and in_range["value"] == 0.5
    ratio = judge(Expectation("ratio", ("b.rps", "a.rps"), (0.9, 1.1), ""), figures)
    assert not ratio["passed"] and ratio["value"] == 0.8
    assert judge(Expectation("increasing", ("s@1.rps", "s@2.rps"), None, ""), figures)["passed"]
    assert not judge(Expectation("decreasing", ("s@1.rps", "s@2.rps"), None, ""), figures)["passed"]
    missing = judge(Expectation("figure", ("c.rps",), (0, 1), ""), figures)
    assert not missing["passed"] and missing["note"] == "not measured"


def test_a_starved_load_measures_nothing_and_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from labctl.experiments import check, load
    from labctl.experiments.checkfile import Run

    tiny = {**SUMMARY, "requests": 10, "failures": 0}
    monkeypatch.setattr(load, "run_load", lambda lab, options, progress: load.LoadResult(tmp_path, tiny))
    measured = check.measure("x", Run("one", "load", {"users": 10}), lambda message: None)
    assert set(measured.figures.values()) == {None}
    assert measured.note.startswith("only 10 requests answered (fewer than 100): too few to judge")
