"""Changing a running lab's size (`labctl scale`) and measuring across sizes (`labctl sweep`)."""

from __future__ import annotations

import csv
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl import lifecycle
from labctl.errors import LabctlError, UsageError
from labctl.experiments.load import LoadOptions, check_options, new_run_dir, run_load
from labctl.model.instance import lab_ref
from labctl.model.lab import Lab, load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_lab, rendered_state
from labctl.running import write_snapshot
from labctl.runtime import local_runtime

Progress = lifecycle.Progress


@dataclass(frozen=True)
class ScaleResult:
    """A block's replicas before and after, and how long the change took."""

    lab: str
    block: str
    before: int
    after: int
    seconds: float


def parse_scale(spec: str) -> tuple[str, int]:
    """'app=6' -> ('app', 6)."""
    block, _, count = spec.partition("=")
    if not block or not count.isdigit() or int(count) < 1:
        raise UsageError(f"expected BLOCK=N with N >= 1, like app=6, got {spec!r}")
    return block, int(count)


def _rendered_state(lab: str) -> dict[str, Any]:
    state = rendered_state(lab)
    if state is None or not local_runtime().containers(lab):
        raise LabctlError(f"lab '{lab}' is not up; start it with 'labctl up {lab_ref(lab)}'")
    return state


def scale(lab_name: str, block_name: str, count: int, progress: Progress) -> ScaleResult:
    """Set a block's replicas on a running lab: start or remove only those replicas, then
    reload the load balancers in front of them (nothing else restarts)."""
    started = time.monotonic()
    state = _rendered_state(lab_name)
    current = load_lab(lab_name, parse_overrides(state["overrides"]))
    if block_name not in current.blocks or not current.blocks[block_name].spec.scalable:
        apps = ", ".join(b.name for b in current.blocks.values() if b.spec.scalable)
        raise UsageError(f"lab '{lab_name}' has no app block '{block_name}' to scale (app blocks: {apps})")
    kept = [o for o in state["overrides"] if not o.startswith(f"{block_name}.replicas=")]
    lab = load_lab(lab_name, parse_overrides([*kept, f"{block_name}.replicas={count}"]))
    block = lab.blocks[block_name]
    running = {s.name for s in local_runtime().containers(lab_name) if s.state == "running"}
    before = sum(1 for name in running if name.startswith(f"{block.service_base}-"))
    rendered = render_lab(lab, state["images"])
    write_snapshot(lab, state["images"])
    new = [name for name in block.instances() if name not in running]
    if new:
        progress(f"starting {', '.join(new)}")
        local_runtime().run_services(lab.project, rendered.compose_file, new)
        lifecycle.wait_services_healthy(lab_name, new, progress)
    lifecycle.apply_changes(lab, rendered, running, progress)
    return ScaleResult(lab_name, block_name, before, count, time.monotonic() - started)


def parse_grid(items: tuple[str, ...]) -> dict[str, list[str]]:
    """'app.replicas=1,2,4' -> {'app.replicas': ['1', '2', '4']}; a [list] value is one value."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise UsageError(f"expected KEY=V1,V2,..., like app.replicas=1,2,4, got {item!r}")
        grid[key] = [values] if values.startswith("[") else [v for v in values.split(",") if v]
    if not grid:
        raise UsageError("give at least one --set KEY=V1,V2,... to sweep")
    return grid


def combinations(grid: dict[str, list[str]]) -> list[list[str]]:
    """Every combination of the grid as a list of KEY=VALUE overrides."""
    keys = list(grid)
    return [[f"{k}={v}" for k, v in zip(keys, values, strict=True)] for values in itertools.product(*grid.values())]


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: its folder, one row per combination, and the state the lab was left in."""

    run_dir: Path
    rows: list[dict[str, Any]]
    after: str


def sweep(lab_name: str, grid: dict[str, list[str]], options: LoadOptions, progress: Progress) -> SweepResult:
    """One load run per combination (each after `up` with those overrides, on top of the ones a
    running lab is up with); table, CSV and chart. Afterwards the lab is as it was: taken down
    again if it was down, brought back to the overrides it was up with if it was up (not left at
    the last combination)."""
    combos = combinations(grid)
    was_down = not local_runtime().containers(lab_name)
    before = None if was_down else rendered_state(lab_name)
    # The grid's own keys replace what the lab was up with.
    base = [item for item in (before or {}).get("overrides", []) if item.split("=", 1)[0] not in grid]
    # Every problem before any start.
    labs = [load_lab(lab_name, parse_overrides([*base, *combo])) for combo in combos]
    check_options(lab_name, options)
    run_dir = new_run_dir(lab_name, "sweep")
    rows = []
    try:
        for index, (combo, lab) in enumerate(zip(combos, labs, strict=True), start=1):
            progress(f"[{index}/{len(combos)}] up with {' '.join(combo)}")
            lifecycle.up(lab, progress=progress)
            result = run_load(lab_name, options, _prefixed(progress, f"[{index}/{len(combos)}] "))
            rows.append(_row(combo, result.summary))
    finally:
        after = _restore(lab_name, list(grid), was_down, before, progress)
    _write_sweep(run_dir, grid, rows, lab_name)
    return SweepResult(run_dir, rows, after)


def _restore(lab_name: str, keys: list[str], was_down: bool, before: dict[str, Any] | None,
             progress: Progress) -> str:
    """Put the lab back as it was before the sweep; one line saying how it was left."""
    if was_down:
        progress("taking the lab down again")
        lifecycle.down(lab_name)
        return f"{lab_name} is down again, as before the sweep"
    if before is None:  # up, but rendered from another LABCTL_HOME: its own overrides are unknown
        return (f"{lab_name} stays at the sweep's last combination; 'labctl up {lab_ref(lab_name)}' with its own "
                "--set values brings it back")
    progress("bringing the lab back as it was")
    lab = load_lab(lab_name, parse_overrides(list(before.get("overrides", []))))
    lifecycle.up(lab, progress=progress)
    values = " ".join(f"{key}={_value(lab, key)}" for key in keys)
    return f"{lab_name} is back as it was before the sweep: {values}"


def _value(lab: Lab, key: str) -> Any:
    first, *rest = key.split(".")
    value: Any = lab.blocks[first].params if first in lab.blocks else getattr(lab, first, None)
    for part in rest:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _prefixed(progress: Progress, prefix: str) -> Progress:
    return lambda message: progress(prefix + message)


def _row(combo: list[str], summary: dict[str, Any]) -> dict[str, Any]:
    row = {
        "params": dict(item.split("=", 1) for item in combo),
        "rps": summary["rps"], "p95_ms": summary["latency_ms"]["p95"], "p50_ms": summary["latency_ms"]["p50"],
        "requests": summary["requests"], "failures": summary["failures"],
        "backend_share": summary["backend_share"], "load_gen_bound": summary["load_gen_bound"],
        "run_id": summary["run_id"],
    }
    # A database lab's writes alone (a commit's wait for a replica), apart from its reads.
    writes = (summary.get("db") or {}).get("steady_write_ms")
    if writes and writes.get("writes"):
        row["write_p50_ms"], row["write_p99_ms"] = writes["p50"], writes["p99"]
    return row


def _write_sweep(run_dir: Path, grid: dict[str, list[str]], rows: list[dict[str, Any]], lab: str) -> None:
    (run_dir / "sweep.json").write_text(json.dumps({"lab": lab, "grid": grid, "rows": rows}, indent=2) + "\n",
                                        encoding="utf-8")
    with open(run_dir / "sweep.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*grid, "rps", "p50_ms", "p95_ms", "write_p50_ms", "write_p99_ms", "failures",
                         "load_gen_bound", "run_id"])
        for row in rows:
            writer.writerow([*row["params"].values(), row["rps"], row["p50_ms"], row["p95_ms"],
                             row.get("write_p50_ms", ""), row.get("write_p99_ms", ""), row["failures"],
                             row["load_gen_bound"], row["run_id"]])
    _draw_sweep(run_dir / "sweep.png", rows, lab)


def _draw_sweep(path: Path, rows: list[dict[str, Any]], lab: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [" ".join(f"{k.split('.')[-1]}={v}" for k, v in row["params"].items()) for row in rows]
    figure, left = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 4.5))
    left.bar(labels, [row["rps"] for row in rows], color="tab:blue")
    left.set_ylabel("requests / s", color="tab:blue")
    right = left.twinx()
    right.plot(labels, [row["p95_ms"] for row in rows], color="tab:red", marker="o")
    right.set_ylabel("p95 latency ms", color="tab:red")
    left.set_title(f"{lab}: sweep")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
