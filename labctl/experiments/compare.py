"""`labctl compare`: the same drill, with the same load, against several labs, one after the
other; one table (compare.json) and one chart (compare.png) in runs/compare/<run-id>/."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from labctl import lifecycle
from labctl.errors import LabctlError, UsageError
from labctl.experiments import drill
from labctl.experiments.load import new_run_dir
from labctl.model.lab import Lab, lab_folder, load_lab
from labctl.running import attach

Progress = Callable[[str], None]
RUNS_FOLDER = "compare"
# The columns of the table, in order: key in a row -> heading.
COLUMNS = {
    "lab": "lab", "verdict": "verdict", "rps": "req/s", "p95_ms": "p95 ms",
    "failed_during_fault": "failed in fault", "error_window_s": "error window s",
    "degraded_s": "degraded s", "detection_s": "detect s", "recovery_s": "recover s",
}
# The columns when a lab's drill kept a write ledger (the db, cluster and consensus labs): the
# notes' DB comparison, answered with what the fault cost the writes.
LEDGER_COLUMNS = {
    "lab": "lab", "drill": "drill", "verdict": "verdict", "nodes": "nodes", "rto_s": "RTO s",
    "lost_writes": "lost acked writes", "refused_writes": "writes refused",
    "write_error_window_s": "write error window s", "steady_write_p50_ms": "write p50 ms",
    "steady_write_p99_ms": "write p99 ms", "rps": "req/s",
}


def columns_for(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The table's columns: the ledger's when any row has one."""
    if any(row.get("lost_writes") is not None for row in rows):
        return LEDGER_COLUMNS
    return COLUMNS


@dataclass(frozen=True)
class LoadShape:
    """The load every lab gets: users and an open-model rate (req/s), whatever its drill file says."""

    users: int = 10
    rate: float = 150.0


@dataclass
class CompareResult:
    """The rows of the table, where they were written, and what every lab's drill did."""

    drill: str
    load: LoadShape
    run_dir: Path
    rows: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"drill": self.drill, "load": {"users": self.load.users, "rate": self.load.rate},
                "run_dir": str(self.run_dir), "rows": self.rows}


def parse_labs(text: str, default_drill: str) -> dict[str, str]:
    """'db-failover,kv-redis-cluster:kill-master' -> each lab (in order, once) and the drill it
    runs: the one named after its colon, else `default_drill`."""
    found: dict[str, str] = {}
    duplicates: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        lab, _, drill_name = (piece.strip() for piece in item.partition(":"))
        if not lab or (":" in item and not drill_name):
            raise UsageError(f"--labs: '{item}' is not LAB or LAB:DRILL")
        if lab in found:
            duplicates.append(lab)
        found[lab] = drill_name or default_drill
    if not found:
        raise UsageError("--labs expects lab names separated by commas, e.g. lb-nginx,lb-haproxy "
                         "(LAB:DRILL runs another drill on that lab)")
    if duplicates:
        raise UsageError(f"--labs names {', '.join(sorted(set(duplicates)))} more than once")
    return found


def plan(labs: dict[str, str]) -> dict[str, drill.Drill]:
    """Every lab's drill, validated before anything starts; every problem is reported at once."""
    found: dict[str, drill.Drill] = {}
    problems: list[str] = []
    for lab, drill_name in labs.items():
        try:
            loaded = load_lab(lab)
            found[lab] = drill.load_drill(lab, drill_name)
            if _state(lab) == "down":
                lifecycle.check_ports(loaded)
        except LabctlError as exc:
            problems.append(f"  {lab}: {exc}".replace("\n", "\n    "))
    if problems:
        names = ", ".join(sorted(set(labs.values())))
        raise LabctlError("\n".join([f"cannot compare drill '{names}'; nothing was started:", *problems]))
    return found


def _state(lab: str) -> str:
    return str(lifecycle.status(lab)[0].to_json()["state"])


def run_compare(labs: dict[str, str], load: LoadShape, progress: Progress) -> CompareResult:
    """Run each lab's drill in turn (bringing up the labs that are down, and taking down only
    those afterwards), then write compare.json and compare.png."""
    drills = plan(labs)
    drill_name = "+".join(dict.fromkeys(labs.values()))
    run_dir = new_run_dir(RUNS_FOLDER, drill_name)
    reports = []
    for lab in labs:
        reports.append(_drill_one(lab, same_load(lab, drills[lab], load), progress))
    rows = compare_rows(reports)
    result = CompareResult(drill_name, load, run_dir, rows)
    (run_dir / "compare.json").write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    draw_compare(run_dir / "compare.png", rows, f"{drill_name}: {load.users} users, {load.rate:g} req/s")
    return result


def same_load(lab: str, loaded: drill.Drill, load: LoadShape) -> drill.Drill:
    """The drill with the compared load: every lab gets the same users; a lab with a Locust user
    of its own (the db labs' ledger writers) keeps it, closed-model, and the others get the
    open-model rate (that is labctl's generic user, which writes no ledger)."""
    shape: dict[str, Any] = {k: v for k, v in loaded.load.items() if k != "rate"}
    shape["users"] = load.users
    if not has_own_user(lab):
        shape["rate"] = load.rate
    return replace(loaded, load=shape)


def has_own_user(lab: str) -> bool:
    return (lab_folder(lab) / "locustfile.py").is_file()


def _drill_one(lab: str, loaded: drill.Drill, progress: Progress) -> dict[str, Any]:
    def tagged(text: str) -> None:
        progress(f"{lab}: {text}")

    state = _state(lab)
    if state not in ("up", "down"):
        raise LabctlError(f"lab '{lab}' is {state}; wait for it, or 'labctl down {lab}' and compare again")
    brought_up = state == "down"
    if brought_up:
        lifecycle.up(load_lab(lab), progress=tagged)
    try:
        running = attach(lab)
        result = drill.run_drill(running, loaded, tagged)
    finally:
        if brought_up:
            tagged("taking the lab down again")
            lifecycle.down(lab)
    return {**result.report, "run_dir": str(result.run_dir), "nodes": data_nodes(running.lab)}


def data_nodes(lab: Lab) -> int:
    """The containers that hold the lab's data (database members, an arbitrator that votes):
    the nodes the design needs."""
    return sum(len(block.spec.services(block)) for block in lab.blocks.values() if block.spec.stores_data)


def compare_rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per drill.json: the numbers the table, the chart and --json show."""
    return [_row(report) for report in reports]


def _row(report: dict[str, Any]) -> dict[str, Any]:
    latency = report.get("latency_ms") or {}
    return {
        "lab": report["lab"], "drill": report["drill"], "verdict": report["verdict"],
        "generator": report.get("generator", "locust"), "load_model": (report.get("load") or {}).get("model"),
        "rps": report.get("rps"), "p95_ms": latency.get("p95"),
        "requests": report["requests"], "failures": report["failures"],
        "failed_during_fault": report.get("failed_during_fault", report["failures"]),
        "error_window_s": report["error_window_s"], "degraded_s": report.get("degraded_s"),
        "detection_s": report.get("detection_s"),
        "recovery_s": report["recovery_s"], "run_dir": report.get("run_dir", ""),
        **_ledger_cells(report),
    }


def _ledger_cells(report: dict[str, Any]) -> dict[str, Any]:
    writes = report.get("writes") or {}
    steady = report.get("steady_write_ms") or {}
    window = report.get("write_error_window") or {}
    refused = writes["failed"] + writes["unknown"] if writes else None
    return {
        "nodes": report.get("nodes"), "rto_s": report.get("rto_s"), "lost_writes": writes.get("lost"),
        "refused_writes": refused, "write_error_window_s": window.get("duration_s", 0.0 if writes else None),
        "steady_write_p50_ms": steady.get("p50"), "steady_write_p99_ms": steady.get("p99"),
    }


def load_reports(paths: list[Path]) -> list[dict[str, Any]]:
    """drill.json files as recorded (for rebuilding a table without running anything)."""
    reports = []
    for path in paths:
        report = json.loads(path.read_text(encoding="utf-8"))
        reports.append({**report, "run_dir": report.get("run_dir", str(path.parent))})
    return reports


def cell(row: dict[str, Any], key: str) -> str:
    """A value as the table shows it: '-' for a number the drill did not get to measure."""
    value = row.get(key)
    if value is None:
        return "-"
    if key in ("rps", "p95_ms", "steady_write_p50_ms", "steady_write_p99_ms"):
        return f"{float(value):.0f}" if key == "rps" else f"{float(value):.1f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def draw_compare(path: Path, rows: list[dict[str, Any]], title: str) -> None:
    """compare.png: bars of req/s, p95, failed requests and detection/degraded/recovery per lab, and
    below them each lab's failed requests per second (from its drill's timeline.csv)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(14, 7))
    grid = figure.add_gridspec(2, 4)
    _bars([figure.add_subplot(grid[0, i]) for i in range(4)], rows)
    _failures_over_time(figure.add_subplot(grid[1, :]), rows)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


# The bars of the "seconds" panel: key in a row -> legend.
_TIMES = {"detection_s": "detection", "degraded_s": "degraded", "recovery_s": "recovery"}


def _bars(axes: list[Any], rows: list[dict[str, Any]]) -> None:
    labs = [row["lab"] for row in rows]
    panels = [("rps", "req/s", "tab:blue"), ("p95_ms", "p95 ms", "tab:purple"),
              ("failed_during_fault", "failed during fault", "tab:red")]
    for axis, (key, label, color) in zip(axes[:3], panels, strict=True):
        axis.bar(labs, [float(row.get(key) or 0) for row in rows], color=color)
        axis.set_title(label)
    width = 0.27
    x = list(range(len(labs)))
    times = axes[3]
    for offset, (key, label) in zip((-width, 0.0, width), _TIMES.items(), strict=True):
        times.bar([i + offset for i in x], [float(r.get(key) or 0) for r in rows], width, label=label)
    times.set_xticks(x, labs)
    times.set_title("seconds")
    times.legend(fontsize="small")
    for axis in axes:
        axis.tick_params(axis="x", labelrotation=30, labelsize="small")


def _failures_over_time(axis: Any, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        timeline = Path(str(row.get("run_dir") or "")) / "main" / "timeline.csv"
        if not row.get("run_dir") or not timeline.is_file():
            continue
        with open(timeline, encoding="utf-8") as handle:
            seconds = list(csv.DictReader(handle))
        axis.plot([int(r["second"]) for r in seconds], [int(r["failures"]) for r in seconds], label=row["lab"])
    axis.set_xlabel("seconds since the load started (the drill's faults at the same times in every lab)")
    axis.set_ylabel("failed requests / s")
    if axis.get_lines():
        axis.legend(fontsize="small", loc="upper right")
