"""`labctl check`: run a lab's checkpoints against the running lab with the measurements the
project already has (load, drill, sweep), and say per checkpoint what was measured, what was
expected and whether it held. check.json in the run folder names each measurement's own folder."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.durations import parse_duration
from labctl.errors import LabctlError
from labctl.experiments.checkfile import FIGURES, Checkpoint, Expectation, Run, load_checks, parse_reference
from labctl.experiments.load import LoadOptions, new_run_dir, require_up

Progress = Callable[[str], None]
# Fewer requests than this and the shares and rates of a load say more about a starved load
# generator than about the lab (seen on a machine with a load average of 48: 10 requests in 8 s).
MIN_REQUESTS = 100


@dataclass(frozen=True)
class Measured:
    """One measured run: its folder, its figures by name (a sweep's under each of its values) and,
    when it measured nothing usable, why."""

    run_dir: Path
    figures: dict[str, Any]
    note: str = ""


@dataclass
class CheckReport:
    """What check.json holds: one entry per checkpoint, and the folder it is in."""

    run_dir: Path
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c["passed"] for c in self.checkpoints)

    def to_json(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "passed": self.passed, "checkpoints": self.checkpoints}


def select(lab: str, only: str | None) -> list[Checkpoint]:
    """The lab's checkpoints, or the one named; an unknown name lists the known ones."""
    checkpoints = load_checks(lab)
    if only is None:
        return checkpoints
    chosen = [c for c in checkpoints if c.id == only]
    if not chosen:
        known = ", ".join(c.id for c in checkpoints)
        raise LabctlError(f"lab '{lab}' has no checkpoint '{only}' (checkpoints: {known})")
    return chosen


def run_checks(lab: str, only: str | None, progress: Progress) -> CheckReport:
    """Run the chosen checkpoints in file order; the checks file and the lab's state are
    checked first, so bad input or a lab that is down leaves no run folder."""
    checkpoints = select(lab, only)
    require_up(lab)
    report = CheckReport(new_run_dir(lab, "check"))
    for index, checkpoint in enumerate(checkpoints, start=1):
        prefix = f"[{index}/{len(checkpoints)}] {checkpoint.id}: "
        report.checkpoints.append(run_checkpoint(lab, checkpoint, _prefixed(progress, prefix)))
        _write(report)
    return report


def _prefixed(progress: Progress, prefix: str) -> Progress:
    return lambda message: progress(prefix + message)


def run_checkpoint(lab: str, checkpoint: Checkpoint, progress: Progress) -> dict[str, Any]:
    """Measure every run of one checkpoint, then judge each expectation against the figures."""
    measured: dict[str, Measured] = {}
    for run in checkpoint.runs:
        progress(f"{run.measurement} '{run.name}'")
        measured[run.name] = measure(lab, run, progress)
    figures = {name: found.figures for name, found in measured.items()}
    results = [judge(expectation, figures) for expectation in checkpoint.expect]
    return {"id": checkpoint.id, "question": checkpoint.question, "answer": checkpoint.answer,
            "question_ko": checkpoint.question_ko, "answer_ko": checkpoint.answer_ko,
            "passed": all(r["passed"] for r in results), "expectations": results,
            "machine": machine_load(),
            "runs": {run.name: {"measurement": run.measurement, "run_dir": str(measured[run.name].run_dir),
                                "figures": measured[run.name].figures, "note": measured[run.name].note}
                     for run in checkpoint.runs}}


def machine_load() -> dict[str, Any]:
    """The host's load average and cores when a checkpoint ended: a range that holds on a quiet
    machine may not on one running many times more work than it has cores."""
    one, five, _ = os.getloadavg()
    return {"load_average_1m": round(one, 2), "load_average_5m": round(five, 2), "cores": os.cpu_count() or 1}


def measure(lab: str, run: Run, progress: Progress) -> Measured:
    """Run one load, drill or sweep with the experiments code and read its figures."""
    if run.measurement == "load":
        return _measure_load(lab, run.params, progress)
    if run.measurement == "drill":
        return _measure_drill(lab, str(run.params), progress)
    return _measure_sweep(lab, run.params, progress)


def load_options(params: dict[str, Any], users: int = 10) -> LoadOptions:
    """The LoadOptions a checkpoint's load or sweep asks for."""
    return LoadOptions(users=int(params.get("users", users)), rate=params.get("rate"),
                       duration_s=parse_duration(str(params.get("duration", "10s"))),
                       processes=int(params.get("processes", 1)), endpoint=str(params.get("endpoint", "http")),
                       path=str(params.get("path", "/")))


def _measure_load(lab: str, params: dict[str, Any], progress: Progress) -> Measured:
    from labctl.experiments.load import run_load

    result = run_load(lab, load_options(params), progress)
    requests = int(result.summary["requests"])
    if requests < MIN_REQUESTS:
        return Measured(result.run_dir, {name: None for name in FIGURES["load"]}, _too_few(requests))
    return Measured(result.run_dir, figures_of("load", result.summary))


def _too_few(requests: int) -> str:
    return (f"only {requests} requests answered (fewer than {MIN_REQUESTS}): too few to judge; the load "
            "generator got little CPU, is the machine busy?")


def _measure_drill(lab: str, name: str, progress: Progress) -> Measured:
    from labctl.experiments.drill import load_drill, run_drill
    from labctl.running import attach

    result = run_drill(attach(lab), load_drill(lab, name), progress)
    if result.verdict == "aborted":  # no fault was injected: its counts measure nothing
        before = result.report["steady_state_before"]
        why = before.get("error") or f"error rate {before.get('error_rate')}, p95 {before.get('p95_ms')} ms"
        return Measured(result.run_dir, {name: None for name in FIGURES["drill"]} | {"passed": 0.0},
                        f"drill aborted: the steady state did not hold before the fault ({why}); is the "
                        "machine busy?")
    return Measured(result.run_dir, figures_of("drill", result.report))


def _measure_sweep(lab: str, params: dict[str, Any], progress: Progress) -> Measured:
    from labctl.experiments import scaling

    [(key, values)] = params["set"].items()
    result = scaling.sweep(lab, {key: [str(v) for v in values]}, load_options(params, users=20), progress)
    rows = {str(row["params"][key]): figures_of("sweep", row) for row in result.rows
            if row["requests"] >= MIN_REQUESTS}
    starved = [row for row in result.rows if row["requests"] < MIN_REQUESTS]
    return Measured(result.run_dir, rows, _too_few(min(r["requests"] for r in starved)) if starved else "")


def figures_of(measurement: str, data: dict[str, Any]) -> dict[str, Any]:
    """Every figure a measurement defines, read from its summary, report or sweep row."""
    return {name: read(data) for name, read in FIGURES[measurement].items()}


def figure_value(figures: dict[str, dict[str, Any]], reference: str) -> Any:
    """The value a reference like 'l4.rps' or 'replicas@2.rps' names, None when not measured."""
    run, value, figure = parse_reference(reference)
    found = figures.get(run, {})
    if value is not None:
        found = found.get(value, {})
    return found.get(figure)


def judge(expectation: Expectation, figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One expectation: the figures it reads, the value it compares and whether it holds."""
    values = {reference: figure_value(figures, reference) for reference in expectation.figures}
    result: dict[str, Any] = {"expected": expectation.describe(), "figures": values, "why": expectation.why}
    if any(v is None for v in values.values()):
        return {**result, "value": None, "passed": False, "note": "not measured"}
    numbers = [float(v) for v in values.values()]
    if expectation.how in ("figure", "ratio"):
        value = numbers[0] if expectation.how == "figure" else _ratio(numbers)
        low, high = expectation.between  # type: ignore[misc]
        return {**result, "value": value, "between": [low, high],
                "passed": value is not None and low <= value <= high}
    pairs = list(itertools.pairwise(numbers))
    ordered = all(a < b for a, b in pairs) if expectation.how == "increasing" else all(a > b for a, b in pairs)
    return {**result, "value": None, "passed": ordered}


def _ratio(numbers: list[float]) -> float | None:
    return None if numbers[1] == 0 else round(numbers[0] / numbers[1], 3)


def _write(report: CheckReport) -> None:
    (report.run_dir / "check.json").write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
