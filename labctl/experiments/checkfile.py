"""Checkpoint files (`labs/<lab>/checks.yaml`): the questions a lab guide asks, the measurement
that answers each (a load, a drill or a sweep) and what counts as right (a range on a figure, a
ratio of two figures, or an ordering). Every problem is reported at once, with file:line and field."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.durations import DRILL_DURATION
from labctl.errors import LabConfigError, LabctlError, Problem
from labctl.experiments.drill import drill_names, load_drill
from labctl.model.lab import lab_folder, load_lab
from labctl.model.overrides import parse_overrides
from labctl.model.schema import schema_errors
from labctl.model.yamlsource import FieldPath, SourceDocument, dotted, load_yaml_file

CHECKS_FILE = "checks.yaml"
Figure = Callable[[dict[str, Any]], float | None]


def _ratio(part: Any, whole: Any) -> float | None:
    return None if not whole else round(float(part) / float(whole), 4)


def _shares(counts: dict[str, int]) -> list[float]:
    total = sum(counts.values())
    return [count / total for count in counts.values()] if total else []


def _extreme(pick: Callable[[list[float]], float], counts: dict[str, int]) -> float | None:
    shares = _shares(counts)
    return round(pick(shares), 4) if shares else None


def _dig(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None  # type: ignore[assignment]
    return data


def _stale_share(reads: Any) -> float | None:
    return _ratio(reads["stale"], reads["reads"]) if isinstance(reads, dict) else None


# What a load measures, read from its summary.json (a db lab's writes are under "db").
LOAD_FIGURES: dict[str, Figure] = {
    "rps": lambda s: s["rps"],
    "p50_ms": lambda s: s["latency_ms"]["p50"],
    "p95_ms": lambda s: s["latency_ms"]["p95"],
    "p99_ms": lambda s: s["latency_ms"]["p99"],
    "requests": lambda s: s["requests"],
    "failures": lambda s: s["failures"],
    "error_rate": lambda s: _ratio(s["failures"], s["requests"]),
    "max_backend_share": lambda s: _extreme(max, s["backends"]),
    "min_backend_share": lambda s: _extreme(min, s["backends"]),
    "backends_answering": lambda s: len(s["backends"]),
    "stale_read_share": lambda s: _stale_share(_dig(s, "db", "stale_reads")),
    "lost_writes": lambda s: _dig(s, "db", "writes", "lost"),
}

# What a drill measures, read from its drill.json.
DRILL_FIGURES: dict[str, Figure] = {
    "passed": lambda r: 1.0 if r["verdict"] == "pass" else 0.0,
    "rps": lambda r: r.get("rps"),
    "p95_ms": lambda r: _dig(r, "latency_ms", "p95"),
    "failures": lambda r: r["failures"],
    "error_rate": lambda r: _ratio(r["failures"], r["requests"]),
    "degraded_s": lambda r: r.get("degraded_s"),
    "detection_s": lambda r: r.get("detection_s"),
    "max_backend_share": lambda r: _extreme(max, r.get("backends", {})),
    "stale_read_share": lambda r: _stale_share(r.get("stale_reads")),
    "max_lag_s": lambda r: _dig(r, "replication", "max_lag_s"),
    "lost_writes": lambda r: _dig(r, "writes", "lost"),
    "acknowledged_writes": lambda r: _dig(r, "writes", "acknowledged"),
    "rto_s": lambda r: r.get("rto_s"),
    "recovery_s": lambda r: r.get("recovery_s"),
    "election_s": lambda r: _dig(r, "election", "election_s"),
}

# What one combination of a sweep measures, read from its row in sweep.json.
SWEEP_FIGURES: dict[str, Figure] = {
    "rps": lambda row: row["rps"],
    "p50_ms": lambda row: row["p50_ms"],
    "p95_ms": lambda row: row["p95_ms"],
    "failures": lambda row: row["failures"],
    "error_rate": lambda row: _ratio(row["failures"], row["requests"]),
    "max_backend_share": lambda row: max(row["backend_share"].values(), default=None),
    # A database lab's commits alone: the wait for a replica shows here, not in reads.
    "write_p50_ms": lambda row: row.get("write_p50_ms"),
    "write_p99_ms": lambda row: row.get("write_p99_ms"),
}

FIGURES: dict[str, dict[str, Figure]] = {"load": LOAD_FIGURES, "drill": DRILL_FIGURES, "sweep": SWEEP_FIGURES}
# Figures that are fractions: a range on them must lie within 0..1.
FRACTIONS = ("error_rate", "max_backend_share", "min_backend_share", "stale_read_share", "passed")

_ID = r"^[a-z0-9][a-z0-9-]*$"
_LOAD = {"type": "object", "additionalProperties": False, "properties": {
    "users": {"type": "integer", "minimum": 1, "maximum": 1000},
    "rate": {"type": "number", "exclusiveMinimum": 0},
    "duration": DRILL_DURATION,
    "endpoint": {"type": "string", "minLength": 1},
    "path": {"type": "string", "pattern": "^/", "description": "a path like / or /work?ms=10"},
    "processes": {"type": "integer", "minimum": 1, "maximum": 16}}}
_SWEEP = {"type": "object", "additionalProperties": False, "required": ["set"], "properties": {
    **_LOAD["properties"],  # type: ignore[dict-item]
    "set": {"type": "object", "minProperties": 1, "maxProperties": 1, "description": "one parameter and "
            "its values, like {app.replicas: [1, 2]}", "additionalProperties": {
                "type": "array", "minItems": 2, "items": {"type": ["integer", "number", "string"]}}}}}
_RUN = {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
        "description": "one of load, drill or sweep", "properties": {
            "load": _LOAD, "drill": {"type": "string", "pattern": _ID, "description": "a drill name"},
            "sweep": _SWEEP}}
_REF = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]*(@[^@]+)?\.[a-z0-9_]+$",
        "description": "a figure like RUN.FIGURE or, for a sweep, RUN@VALUE.FIGURE"}
_RANGE = {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"},
          "description": "a range [low, high]"}
_EXPECT = {"type": "object", "additionalProperties": False, "properties": {
    "figure": _REF, "ratio": {"type": "array", "minItems": 2, "maxItems": 2, "items": _REF},
    "between": _RANGE,
    "increasing": {"type": "array", "minItems": 2, "items": _REF},
    "decreasing": {"type": "array", "minItems": 2, "items": _REF},
    "why": {"type": "string"}}}
CHECKS_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["checkpoints"], "properties": {
        "checkpoints": {"type": "object", "minProperties": 1,
                        "additionalProperties": {
                            "type": "object", "additionalProperties": False,
                            "required": ["question", "runs", "expect"], "properties": {
                                "question": {"type": "string", "minLength": 1},
                                "answer": {"type": "string"},
                                "question_ko": {"type": "string", "minLength": 1},
                                "answer_ko": {"type": "string"},
                                "runs": {"type": "object", "minProperties": 1,
                                         "additionalProperties": _RUN},
                                "expect": {"type": "array", "minItems": 1, "items": _EXPECT}}}}}}


@dataclass(frozen=True)
class Run:
    """One measurement of a checkpoint: its name, what it is (load, drill, sweep) and its parameters."""

    name: str
    measurement: str
    params: Any


@dataclass(frozen=True)
class Expectation:
    """What counts as right: a range on one figure or on the ratio of two, or an ordering."""

    how: str  # figure, ratio, increasing or decreasing
    figures: tuple[str, ...]
    between: tuple[float, float] | None
    why: str

    def describe(self) -> str:
        """The expectation as the report prints it."""
        if self.how == "figure":
            return f"{self.figures[0]} in [{self.between[0]:g}, {self.between[1]:g}]"  # type: ignore[index]
        if self.how == "ratio":
            low, high = self.between  # type: ignore[misc]
            return f"{self.figures[0]} / {self.figures[1]} in [{low:g}, {high:g}]"
        sign = " < " if self.how == "increasing" else " > "
        return sign.join(self.figures)


@dataclass(frozen=True)
class Checkpoint:
    """A question of the guide, the runs that answer it and what counts as right."""

    id: str
    question: str
    answer: str
    runs: tuple[Run, ...]
    expect: tuple[Expectation, ...]
    # The guide's Korean question and answer (README.ko.md asks it), when the file gives them.
    question_ko: str = ""
    answer_ko: str = ""

    def question_in(self, language: str) -> str:
        """The question in `language` (ko or en), English when there is no Korean one."""
        return self.question_ko if language == "ko" and self.question_ko else self.question


def checks_path(lab: str) -> Path:
    """Where a lab's checkpoints are (the file may not exist)."""
    return lab_folder(lab) / CHECKS_FILE


def has_checks(lab: str) -> bool:
    """Whether the lab ships a checks.yaml."""
    return checks_path(lab).is_file()


def load_checks(lab: str) -> list[Checkpoint]:
    """A lab's checkpoints, validated against the schema, its drills, endpoints and parameters."""
    path = checks_path(lab)
    if not path.is_file():
        raise LabctlError(f"lab '{lab}' has no checkpoints (no labs/{lab}/{CHECKS_FILE})")
    display = f"labs/{lab}/{CHECKS_FILE}"
    doc = load_yaml_file(path, display)
    doc.require_mapping("checkpoints")
    found = _name_problems(doc.data) + schema_errors(CHECKS_SCHEMA, doc.data)
    if not found:
        found = _meaning_problems(lab, doc)
    if found:
        raise LabConfigError([Problem(display, doc.line_of(p), dotted(p), text) for p, text in found])
    return [_checkpoint(name, data) for name, data in doc.data["checkpoints"].items()]


def _checkpoint(name: str, data: dict[str, Any]) -> Checkpoint:
    runs = tuple(Run(run, *next(iter(spec.items()))) for run, spec in data["runs"].items())
    return Checkpoint(name, str(data["question"]).strip(), str(data.get("answer", "")).strip(), runs,
                      tuple(_expectation(e) for e in data["expect"]),
                      str(data.get("question_ko", "")).strip(), str(data.get("answer_ko", "")).strip())


def _expectation(data: dict[str, Any]) -> Expectation:
    how = next(key for key in ("figure", "ratio", "increasing", "decreasing") if key in data)
    figures = (data[how],) if how == "figure" else tuple(data[how])
    between = tuple(data["between"]) if "between" in data else None
    return Expectation(how, figures, between, str(data.get("why", "")).strip())


def parse_reference(reference: str) -> tuple[str, str | None, str]:
    """'l4.rps' -> ('l4', None, 'rps'); 'replicas@2.p95_ms' -> ('replicas', '2', 'p95_ms')."""
    match = re.fullmatch(r"([a-z0-9-]+)(?:@([^@]+))?\.([a-z0-9_]+)", reference)
    if match is None:
        raise ValueError(f"not a figure reference: {reference!r}")
    return match.group(1), match.group(2), match.group(3)


Found = list[tuple[FieldPath, str]]


def _name_problems(data: dict[str, Any]) -> Found:
    # Checkpoint and run names appear on the command line and in figure references.
    checkpoints = data.get("checkpoints")
    if not isinstance(checkpoints, dict):
        return []
    paths: list[FieldPath] = [("checkpoints", name) for name in checkpoints]
    paths += [("checkpoints", name, "runs", run) for name, spec in checkpoints.items()
              if isinstance(spec, dict) and isinstance(spec.get("runs"), dict) for run in spec["runs"]]
    return [(path, f"expected a name of lowercase letters, digits and dashes, like kill-backend, got {path[-1]!r}")
            for path in paths if not re.fullmatch(_ID, str(path[-1]))]


def _meaning_problems(lab: str, doc: SourceDocument) -> Found:
    found: Found = []
    for name, data in doc.data["checkpoints"].items():
        where: FieldPath = ("checkpoints", name)
        for run, spec in data["runs"].items():
            found.extend(_run_problems(lab, (*where, "runs", run), spec))
        for index, expectation in enumerate(data["expect"]):
            found.extend(_expect_problems(data["runs"], (*where, "expect", index), expectation))
    return found


def _run_problems(lab: str, where: FieldPath, spec: dict[str, Any]) -> Found:
    if "drill" in spec:
        return _drill_problems(lab, (*where, "drill"), spec["drill"])
    params = next(iter(spec.values()))
    lab_model = load_lab(lab)
    endpoint = params.get("endpoint")
    found: Found = []
    if endpoint is not None and endpoint not in lab_model.endpoints():
        known = ", ".join(lab_model.endpoints())
        found.append(((*where, next(iter(spec)), "endpoint"), f"lab '{lab}' publishes no endpoint "
                      f"'{endpoint}' (endpoints: {known})"))
    for key, values in params.get("set", {}).items():
        for value in values:
            try:
                load_lab(lab, parse_overrides([f"{key}={value}"]))
            except LabctlError as exc:
                found.append(((*where, "sweep", "set", key), f"{key}={value}: {exc}"))
    return found


def _drill_problems(lab: str, where: FieldPath, name: str) -> Found:
    if name not in drill_names(lab):
        return [(where, f"lab '{lab}' has no drill '{name}' (drills: {', '.join(drill_names(lab)) or 'none'})")]
    try:
        load_drill(lab, name)
    except LabConfigError as exc:
        return [(where, f"drill '{name}' is invalid: {exc}")]
    return []


def _expect_problems(runs: dict[str, Any], where: FieldPath, data: dict[str, Any]) -> Found:
    kinds = [key for key in ("figure", "ratio", "increasing", "decreasing") if key in data]
    if len(kinds) != 1:
        return [(where, "an expectation needs one of: figure, ratio, increasing, decreasing")]
    how = kinds[0]
    references = [data[how]] if how == "figure" else list(data[how])
    found: Found = []
    for index, reference in enumerate(references):
        field: FieldPath = (*where, how) if how == "figure" else (*where, how, index)
        found.extend((field, text) for text in _reference_problems(runs, reference))
    found.extend(_range_problems(where, how, data, references))
    return found


def _reference_problems(runs: dict[str, Any], reference: str) -> list[str]:
    run, value, figure = parse_reference(reference)
    if run not in runs:
        return [f"no run '{run}' in this checkpoint (runs: {', '.join(runs)})"]
    measurement, params = next(iter(runs[run].items()))
    if figure not in FIGURES[measurement]:
        return [f"a {measurement} has no figure '{figure}' (figures: {', '.join(FIGURES[measurement])})"]
    if measurement != "sweep":
        return [] if value is None else [f"only a sweep's figures take @VALUE; '{run}' is a {measurement}"]
    values = [str(v) for v in next(iter(params["set"].values()))]
    if value not in values:
        return [f"'{run}' is a sweep: name one of its values, like {run}@{values[0]}.{figure} "
                f"(values: {', '.join(values)})"]
    return []


def _range_problems(where: FieldPath, how: str, data: dict[str, Any], references: list[str]) -> Found:
    has_range = "between" in data
    if how in ("figure", "ratio") and not has_range:
        return [(where, f"missing required key 'between': the range {how} must fall in")]
    if how in ("increasing", "decreasing"):
        return [((*where, "between"), f"an ordering takes no range ({how} compares the figures)")] if has_range else []
    low, high = data["between"]
    if low > high:
        return [((*where, "between"), f"expected [low, high] with low <= high, got [{low:g}, {high:g}]")]
    if how == "ratio" and low < 0:
        return [((*where, "between"), f"a ratio of measured figures is never negative, got [{low:g}, {high:g}]")]
    figure = parse_reference(references[0])[2]
    if how == "figure" and figure in FRACTIONS and (low < 0 or high > 1):
        return [((*where, "between"), f"{figure} is a fraction from 0 to 1, got [{low:g}, {high:g}]")]
    return []
