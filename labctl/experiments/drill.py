"""Chaos drills: steady state before, load with a timeline of faults, heal always, steady
state after, expectations, and a verdict with a report (drill.json, report.md, drill.png)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import kinds, lifecycle
from labctl.durations import DRILL_DURATION, parse_duration
from labctl.errors import LabConfigError, LabctlError, Problem
from labctl.experiments import chaos
from labctl.experiments.events import DrillEvents
from labctl.experiments.load import (
    LoadOptions,
    finish_load,
    start_load,
    stop_load,
    write_run,
)
from labctl.experiments.timeline import Sample, bucket, degradation
from labctl.model.instance import lab_ref
from labctl.model.lab import lab_folder
from labctl.model.schema import schema_errors
from labctl.model.yamlsource import dotted, load_yaml_file
from labctl.running import RunningLab

Progress = Callable[[str], None]
_RATE = {"type": "number", "minimum": 0, "maximum": 1}

_EXPECTATIONS: dict[str, Any] = {
    "max_failed_requests": {"type": "integer", "minimum": 0}, "max_error_rate": _RATE,
    "recovery_within": DRILL_DURATION, "max_p95_ms": {"type": "number", "exclusiveMinimum": 0},
    "max_degraded_s": {"type": "number", "minimum": 0}}


def drill_schema() -> dict[str, Any]:
    """The drill file schema: the runner's own keys, and the step kinds and expectations that
    block kinds add (a db block: `failover:` steps, `max_lost_writes`, `rto_within`)."""
    steps: dict[str, Any] = {}
    expectations = dict(_EXPECTATIONS)
    for kind in kinds.REGISTRY.values():
        steps.update(kind.drill_steps())
        expectations.update({name: e.schema for name, e in kind.drill_expectations().items()})
    return {**_DRILL_SCHEMA, "properties": {
        **_DRILL_SCHEMA["properties"],
        "steps": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["at"],
            "properties": {**_STEP_PROPERTIES, **steps}}},
        "expect": {"type": "object", "additionalProperties": False, "properties": expectations}}}


_STEP_PROPERTIES: dict[str, Any] = {
    "at": DRILL_DURATION, "fault": {"enum": list(chaos.FAULTS)}, "target": {"type": "string"},
    "heal": {"const": True}, "percent": {"type": "number"}, "rate": {"type": "string"},
    "ms": {"type": "integer", "minimum": 0}, "from": {"type": "string"}}

_DRILL_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["title", "steps"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "summary": {"type": "string"},
        # The lab's shape the drill is written for, as `labctl up LAB --set` takes it.
        "up_with": {"type": "array", "minItems": 1, "items": {
            "type": "string", "pattern": r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+=.+$",
            "description": "a --set argument like galera.nodes=2"}},
        "load": {"type": "object", "additionalProperties": False, "properties": {
            "users": {"type": "integer", "minimum": 1, "maximum": 1000},
            "rate": {"type": "number", "exclusiveMinimum": 0},
            "duration": DRILL_DURATION,
            "path": {"type": "string", "pattern": "^/", "description": "a path like / or /api/items"},
            "processes": {"type": "integer", "minimum": 1, "maximum": 16}}},
        "steady_state": {"type": "object", "additionalProperties": False, "properties": {
            "max_error_rate": _RATE, "max_p95_ms": {"type": "number", "exclusiveMinimum": 0},
            "window": DRILL_DURATION}},
    },
}


@dataclass
class Drill:
    """A validated drill file."""

    name: str
    path: Path
    title: str
    summary: str
    load: dict[str, Any]
    steady_state: dict[str, Any]
    steps: list[dict[str, Any]]
    expect: dict[str, Any]
    up_with: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return parse_duration(str(self.load.get("duration", "20s")))

    def load_options(self, duration_s: float) -> LoadOptions:
        return LoadOptions(users=int(self.load.get("users", 10)), rate=self.load.get("rate"),
                           duration_s=duration_s, processes=int(self.load.get("processes", 1)),
                           path=str(self.load.get("path", "/")))


@dataclass
class DrillResult:
    """Everything drill.json holds, and where the report is."""

    run_dir: Path
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return str(self.report["verdict"])


def drill_names(lab: str) -> list[str]:
    """Names of a lab's drills."""
    folder = lab_folder(lab) / "drills"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_drill(lab: str, name: str) -> Drill:
    """Load and validate a drill; every problem at once, with file:line and field."""
    path = lab_folder(lab) / "drills" / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(drill_names(lab)) or "none"
        raise LabctlError(f"lab '{lab}' has no drill '{name}' (drills: {known})")
    display = f"labs/{lab}/drills/{name}.yaml"
    doc = load_yaml_file(path, display)
    doc.require_mapping("title, load, steps and expect")
    found = schema_errors(drill_schema(), doc.data)
    if not found:
        found = _step_problems(doc.data)
    if found:
        raise LabConfigError([Problem(display, doc.line_of(p), dotted(p), text) for p, text in found])
    data = doc.data
    return Drill(name, path, data["title"], str(data.get("summary", "")).strip(), data.get("load", {}),
                 data.get("steady_state", {}), data["steps"], data.get("expect", {}), list(data.get("up_with", [])))


def _kind_steps() -> list[str]:
    # Several kinds take the same step (conflicting_updates), with the same schema.
    return list(dict.fromkeys(key for kind in kinds.REGISTRY.values() for key in kind.drill_steps()))


def _step_problems(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    duration = parse_duration(str(data.get("load", {}).get("duration", "20s")))
    actions = ["fault", "heal", *_kind_steps()]
    for index, step in enumerate(data["steps"]):
        present = [key for key in actions if key in step]
        if len(present) != 1:
            text = ", ".join(["fault (with a target)", *actions[1:]])
            found.append((("steps", index), f"a step needs one of: {text}"))
        elif "fault" in step and "target" not in step:
            found.append((("steps", index), "missing required key 'target'"))
        else:
            action = step.get("fault", present[0])
            found.extend((("steps", index, key), text) for key, text in chaos.parameter_problems(action, _params(step)))
        if parse_duration(step["at"]) >= duration:
            found.append((("steps", index, "at"), f"expected a time before the end of the load ({duration:.0f}s)"))
    return found


def run_drill(running: RunningLab, drill: Drill, progress: Progress) -> DrillResult:
    """Run a drill end to end; the lab is always healed, even when the drill fails. A lab
    that is down, or still has a fault from an earlier `labctl chaos`, is refused before the
    run folder is made."""
    running.require_up()
    refuse_other_shape(running, drill)
    refuse_active_faults(running.name)
    result = DrillResult(running.new_run_dir(f"drill-{drill.name}"))
    bound = _steady_bounds(drill)
    progress("checking the steady state before")
    before = _steady_when_up(running, drill, result.run_dir / "before", bound)
    if not before["ok"]:
        return _finish(result, running.name, drill, "aborted", before, None, [], [], None)
    faults: list[dict[str, Any]] = []
    events = subscribed_events(running, progress)
    main_dir = result.run_dir / "main"
    try:
        events.drill_started.fire()
        samples, summary, start = _main_run(running, drill, main_dir, faults, progress, events)
    finally:
        events.load_finished.fire()
        _close_open_faults(faults, chaos.heal(running.name))
    extra: dict[str, Any] = {}
    events.healed.fire(run_dir=main_dir, faults=faults, results=extra)
    if events.lab_up_again.has_listeners:
        _wait_until_up(running, 90.0)
        events.lab_up_again.fire(results=extra)
    progress("waiting for the lab to be healthy again, then checking the steady state after")
    after = _steady_when_up(running, drill, result.run_dir / "after", bound)
    return _finish(result, running.name, drill, None, before, after, samples, faults, (summary, start), extra)


def subscribed_events(running: RunningLab, progress: Progress) -> DrillEvents:
    """The drill's events, with every block of the lab subscribed to them."""
    events = DrillEvents()
    for block in running.lab.blocks.values():
        block.spec.subscribe(running.lab, block, events, progress)
    return events


def refuse_active_faults(lab: str) -> None:
    """Refuse, before anything starts, a drill on a lab an earlier `labctl chaos` left broken:
    its steady state could never hold, and its report would blame the drill."""
    active = chaos.faults_in_effect(lab)
    if active:
        named = ", ".join(f"{f.fault} {f.target} (since {time.strftime('%H:%M:%S', time.localtime(f.at))}, "
                          f"id {f.id})" for f in active)
        raise LabctlError(f"lab '{lab}' still has {len(active)} fault(s) from an earlier 'labctl chaos': "
                          f"{named}; revert {'it' if len(active) == 1 else 'them'} with 'labctl heal {lab_ref(lab)}', "
                          "then run the drill again")


def refuse_other_shape(running: RunningLab, drill: Drill) -> None:
    """Refuse a drill written for the lab in another shape (its `up_with`), naming the
    `labctl up --set` that gives the lab that shape."""
    from labctl.model.overrides import parse_overrides

    wanted = parse_overrides(drill.up_with)
    now = {o.text: running_value(running, o.path) for o in wanted}
    wrong = [o for o in wanted if now[o.text] != o.value]
    if not wrong:
        return
    runs = ", ".join(f"{'.'.join(o.path)}={json.dumps(now[o.text])}" for o in wrong)
    sets = " ".join(f"--set {o.text}" for o in wanted)
    raise LabctlError(f"drill '{drill.name}' needs lab '{running.name}' up with {', '.join(drill.up_with)} "
                      f"(it runs with {runs}); run 'labctl up {lab_ref(running.name)} {sets}' first "
                      f"('labctl up {lab_ref(running.name)}' goes back to the lab file's values)")


def running_value(running: RunningLab, path: tuple[str, ...]) -> Any:
    """A parameter of the running lab (after defaults) at a dotted path; None when absent."""
    block = running.lab.blocks.get(path[0])
    value: Any = block.params if block else None
    for key in path[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _steady_bounds(drill: Drill) -> dict[str, float]:
    state = drill.steady_state
    return {"max_error_rate": float(state.get("max_error_rate", 0.01)),
            "max_p95_ms": float(state.get("max_p95_ms", 1000)),
            "window_s": parse_duration(str(state.get("window", "3s")))}


def _steady_check(lab: str, drill: Drill, folder: Path, bound: dict[str, float]) -> dict[str, Any]:
    folder.mkdir(parents=True)
    run = start_load(lab, drill.load_options(bound["window_s"]), folder)
    _, summary = finish_load(run)
    error_rate = summary["failures"] / max(1, summary["requests"])
    p95 = summary["latency_ms"]["p95"]
    ok = error_rate <= bound["max_error_rate"] and p95 <= bound["max_p95_ms"]
    return {"ok": ok, "error_rate": round(error_rate, 4), "p95_ms": p95, "requests": summary["requests"],
            "bound": {"max_error_rate": bound["max_error_rate"], "max_p95_ms": bound["max_p95_ms"]}}


def _steady_when_up(running: RunningLab, drill: Drill, folder: Path, bound: dict[str, float],
                    timeout: float = 60.0) -> dict[str, Any]:
    if not _wait_until_up(running, timeout):
        return {"ok": False, "error": f"the lab was not healthy {timeout:.0f}s after healing",
                "bound": {"max_error_rate": bound["max_error_rate"], "max_p95_ms": bound["max_p95_ms"]}}
    return _steady_check(running.name, drill, folder, bound)


def _wait_until_up(running: RunningLab, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while (state := lifecycle.overall_state(running.states())) != "up":
        if state == "down":
            raise LabctlError(f"lab '{running.name}' is not up; start it with 'labctl up {lab_ref(running.name)}'")
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _main_run(running: RunningLab, drill: Drill, folder: Path, faults: list[dict[str, Any]],
              progress: Progress, events: DrillEvents) -> tuple[list[Sample], dict[str, Any], float]:
    folder.mkdir(parents=True)
    run = start_load(running.name, drill.load_options(drill.duration_s), folder)
    try:
        start = _wait_first_sample(run.run_dir, run.process)
        for step in sorted(drill.steps, key=lambda s: parse_duration(s["at"])):
            _sleep_until(start + parse_duration(step["at"]), progress, drill)
            if "fault" in step or "heal" in step:
                _do_step(running, step, start, faults, progress, events)
            else:
                _kind_step(events, step, start, progress)
        samples, summary = finish_load(run)
    except BaseException:
        stop_load(run)
        raise
    write_run(run.run_dir, samples, summary)
    return samples, summary, start


def _wait_first_sample(run_dir: Path, process: Any) -> float:
    deadline = time.time() + 30
    while time.time() < deadline and process.poll() is None:
        if any(p.stat().st_size for p in run_dir.glob("samples-*.csv")):
            return time.time()
        time.sleep(0.1)
    raise LabctlError(f"the load generator did not start sending requests; see {run_dir / 'locust.log'}")


def _sleep_until(when: float, progress: Progress, drill: Drill) -> None:
    while time.time() < when:
        progress(f"{drill.name}: next step in {when - time.time():.0f}s")
        time.sleep(min(0.5, max(0.0, when - time.time())))


def _kind_step(events: DrillEvents, step: dict[str, Any], start: float, progress: Progress) -> None:
    key = next(k for k in step if k != "at")
    handler = events.handles_step(step)
    if handler is None:
        owner = next((k.name for k in kinds.REGISTRY.values() if key in k.drill_steps()), "suitable")
        raise LabctlError(f"a '{key}' step needs a lab with a {owner} block")
    progress(f"t={time.time() - start:.1f}s {key} {step[key]}")
    handler(step)


def _do_step(running: RunningLab, step: dict[str, Any], start: float, faults: list[dict[str, Any]],
             progress: Progress, events: DrillEvents) -> None:
    if step.get("heal"):
        progress(f"t={time.time() - start:.1f}s heal")
        events.healing.fire()
        _close_open_faults(faults, chaos.heal(running.name))
        return
    params = _params(step)
    progress(f"t={time.time() - start:.1f}s {step['fault']} {step['target']}")
    undoes = {"start": ("kill", "stop"), "unpause": ("pause",)}.get(step["fault"], ())
    for fault in chaos.inject(running, step["fault"], step["target"], params):
        for earlier in faults:
            if earlier["target"] == fault.target and earlier["fault"] in undoes and earlier["reverted_at"] is None:
                earlier["reverted_at"] = fault.at
        # Faults with nothing to revert (start, restart, unpause) end when they happen.
        record = {"at": fault.at, "fault": fault.fault, "target": fault.target, "id": fault.id,
                  "reverted_at": None if fault.revert else fault.at}
        faults.append(record)
        events.fault_applied.fire(fault=record)


def _params(step: dict[str, Any]) -> dict[str, Any]:
    return {k: step[k] for k in ("percent", "rate", "ms", "from") if k in step}


def _close_open_faults(faults: list[dict[str, Any]], healed: list[chaos.Fault]) -> None:
    reverted = {f.id: f.reverted_at for f in healed}
    for fault in faults:
        if fault["reverted_at"] is None:
            fault["reverted_at"] = reverted.get(fault["id"])


def relative_faults(faults: list[dict[str, Any]], start: float) -> list[dict[str, Any]]:
    """Faults with times in seconds since the load started, as drill.json gives them."""
    return [{"at_s": round(f["at"] - start, 2), "fault": f["fault"], "target": f["target"],
             "reverted_at_s": None if f["reverted_at"] is None else round(f["reverted_at"] - start, 2)}
            for f in faults]


def measure(samples: list[Sample], start: float, faults: list[dict[str, Any]], bound: float) -> dict[str, Any]:
    """error_window_s and recovery_s of a run, relative to the first fault."""
    if not faults:
        return {"error_window_s": 0.0, "recovery_s": 0.0}
    first = start + min(float(f["at_s"]) for f in faults)
    failed = sorted(s.at for s in samples if not s.ok and s.at >= first)
    window = round(failed[-1] - failed[0], 2) if failed else 0.0
    seconds = bucket([s for s in samples if s.at >= first], first)
    bad = [row.second for row in seconds if row.failures / max(1, len(row.latencies)) > bound]
    recovery = float(bad[-1] + 1) if bad else 0.0
    return {"error_window_s": window, "recovery_s": recovery}


# A request counts as hit by the fault when it failed, or when the time from sending it to its
# answer was SLOW_FACTOR times the steady p95 and SLOW_MARGIN_MS more. Service time, not latency:
# in the open model latency counts from when a request was due, so a load generator's backlog
# (a busy machine, or users stuck behind one hit request) makes requests late without the
# backend having been slow for them.
SLOW_FACTOR = 3.0
SLOW_MARGIN_MS = 50.0
# A request sent to a dead server holds its user for the connect timeout (HAProxy's is 1 s), so
# hit requests of a closed-model load come in waves one timeout apart: the gap must be wider.
DETECTION_GAP_S = 2.0


def detection(samples: list[Sample], start: float, faults: list[dict[str, Any]], baseline_p95: float) -> dict[str, Any]:
    """detection_s: from the first fault until the last request of the first burst of hit ones
    (sent less than DETECTION_GAP_S apart) was sent, i.e. until traffic stopped going to the broken backend,
    capped at the revert; failed_during_fault: failures from the first fault on."""
    if not faults:
        return {"detection_s": 0.0, "failed_during_fault": 0}
    first = start + min(float(f["at_s"]) for f in faults)
    healed = [float(f["reverted_at_s"]) for f in faults if f.get("reverted_at_s") is not None]
    end = start + min(healed) if healed else float("inf")
    after = [s for s in samples if s.at >= first]
    slow = max(baseline_p95 * SLOW_FACTOR, baseline_p95 + SLOW_MARGIN_MS)
    hit = sorted(s.sent_at for s in after if not s.ok or s.served_ms > slow)
    last = first
    for sent in hit:
        if sent - last > DETECTION_GAP_S:
            break
        last = max(last, min(sent, end))
    return {"detection_s": round(last - first, 2), "failed_during_fault": sum(1 for s in after if not s.ok)}


def evaluate(expect: dict[str, Any], summary: dict[str, Any], measured: dict[str, Any]) -> list[dict[str, Any]]:
    """Each expectation with what was observed."""
    error_rate = summary["failures"] / max(1, summary["requests"])
    checks: dict[str, tuple[Any, Callable[[Any, Any], bool]]] = {
        "max_failed_requests": (summary["failures"], lambda e, o: o <= e),
        "max_error_rate": (round(error_rate, 4), lambda e, o: o <= e),
        "max_p95_ms": (summary["latency_ms"]["p95"], lambda e, o: o <= e),
        "recovery_within": (measured["recovery_s"], lambda e, o: o <= parse_duration(str(e))),
        "max_degraded_s": (measured.get("degraded_s"), lambda e, o: o is not None and o <= e),
    }
    # Kinds may share a name (galera's and group's rejoin_within): the kind that measured it answers.
    for kind in kinds.REGISTRY.values():
        for name, e in kind.drill_expectations().items():
            observed = e.observe(measured)
            if name not in checks or (observed is not None and checks[name][0] is None):
                checks[name] = (observed, e.passes)
    rows = []
    for name, expected in expect.items():
        observed, passes = checks[name]
        rows.append({"name": name, "expected": expected, "observed": observed, "ok": bool(passes(expected, observed))})
    return rows


def _finish(result: DrillResult, lab: str, drill: Drill, verdict: str | None, before: dict[str, Any],
            after: dict[str, Any] | None, samples: list[Sample], faults: list[dict[str, Any]],
            main: tuple[dict[str, Any], float] | None, extra: dict[str, Any] | None = None) -> DrillResult:
    from labctl.experiments.drill_report import write_report

    report: dict[str, Any] = {"lab": lab, "drill": drill.name, "title": drill.title, "steady_state_before": before,
                              "steady_state_after": after, "faults": faults, "expectations": [],
                              "requests": 0, "failures": 0, "error_window_s": 0.0, "recovery_s": 0.0,
                              "detection_s": 0.0, "failed_during_fault": 0, "degraded_s": 0.0}
    if main is not None:
        summary, start = main
        faults = relative_faults(faults, start)
        report["faults"] = faults
        measured = {**measure(samples, start, faults, float(before["bound"]["max_error_rate"])), **(extra or {})}
        measured.update(detection(samples, start, faults, float(before["p95_ms"])))
        first = min((float(f["at_s"]) for f in faults), default=None)
        measured.update(degradation(samples, start, first, float(before["bound"]["max_p95_ms"])).to_json())
        expectations = evaluate(drill.expect, summary, measured)
        report.update(measured, expectations=expectations, requests=summary["requests"],
                      failures=summary["failures"], rps=summary["rps"], latency_ms=summary["latency_ms"],
                      backends=summary["backends"], errors=summary.get("errors", []),
                      generator=summary.get("generator", "locust"),
                      load={k: summary[k] for k in ("model", "users", "target_rps", "duration_s")})
        if verdict is None:
            verdict = _verdict(expectations, after)
        report["verdict"] = verdict  # before the report: the chart's title names it
        write_report(result.run_dir, report, samples, start)
    report["verdict"] = verdict
    (result.run_dir / "drill.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    result.report = report
    return result


def _verdict(expectations: list[dict[str, Any]], after: dict[str, Any] | None) -> str:
    if not all(e["ok"] for e in expectations):
        return "fail"
    if after is not None and not after["ok"]:
        return "deviated"
    return "pass"
