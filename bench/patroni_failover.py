"""Repeated kill-primary drills on pg-patroni: how long Patroni takes to promote a replica with
the lab's tuned lock (ttl 20 s, loop_wait 2 s, retry_timeout 5 s) against Patroni's defaults
(30 s, 10 s, 10 s), and acknowledged writes lost to asynchronous streaming against the same
kill in Patroni's synchronous mode.

Each shape is brought up once (`labctl up --set ...`, the drill file's `up_with`) and its drill
run --runs times in a row (--sync-runs for synchronous mode). For each run: verdict, when
another member held the lock and ran as primary on a new timeline (from the kill in place),
RTO (the first acknowledged write sent after the kill), acknowledged, lost and unknown writes.
The ratio column is measured/baseline (the first shape, the lab as shipped).

Usage: .venv/bin/python bench/patroni_failover.py [--runs 5] [--sync-runs 20]
Target (issue 18): RTO medians with defaults and tuned; 0 lost acknowledged writes in every
synchronous-mode run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LABCTL = [sys.executable, "-m", "labctl"]
LAB = "pg-patroni"
TUNED = ("pg.ttl=20", "pg.loop_wait=2", "pg.retry_timeout=5")
DEFAULTS = ("pg.ttl=30", "pg.loop_wait=10", "pg.retry_timeout=10")
# (name, drill, what `up` sets for it, whether it takes --sync-runs): the baseline first.
SHAPES = (
    ("tuned async", "kill-primary", (*TUNED, "pg.synchronous_mode=false"), False),
    ("defaults async", "kill-primary-default-ttl", (*DEFAULTS, "pg.synchronous_mode=false"), False),
    ("tuned sync", "kill-primary-sync", (*TUNED, "pg.synchronous_mode=true"), True),
)
FIGURES = ("promoted_s", "rto_s", "acknowledged", "lost", "unknown")


def labctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LABCTL, *args], cwd=REPO, capture_output=True, text=True)


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """One run's figures from its drill.json."""
    patroni, writes = report.get("patroni") or {}, report.get("writes") or {}
    return {"verdict": report["verdict"], "promoted_s": patroni.get("promoted_s"), "rto_s": report.get("rto_s"),
            "acknowledged": writes.get("acknowledged"), "lost": writes.get("lost"), "unknown": writes.get("unknown")}


def one_drill(drill: str, sets: tuple[str, ...]) -> dict[str, Any]:
    result = labctl("drill", LAB, drill, "--json")
    if not result.stdout.strip():
        lines = [line for line in result.stderr.splitlines() if line.strip().strip("-|")]
        print(f"  {drill}: drill error (exit {result.returncode}): {' / '.join(lines[-3:]) or 'no output'}",
              flush=True)
        labctl("up", LAB, *[f"--set={s}" for s in sets])
        return {"verdict": "error", **{figure: None for figure in FIGURES}}
    return figures(json.loads(result.stdout))


def median(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def worst(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return max(present) if present else None


def show(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def bring_up(sets: tuple[str, ...]) -> bool:
    """`up` in this shape; once more from scratch after a failure (then the shape's runs are errors)."""
    for attempt in ("", " again, after down"):
        up = labctl("up", LAB, *[f"--set={s}" for s in sets])
        if up.returncode == 0:
            return True
        print(f"  labctl up {LAB} {' '.join(sets)} failed{attempt}: {up.stderr.strip()[-500:]}", flush=True)
        labctl("down", LAB)
    return False


def run_shape(name: str, drill: str, sets: tuple[str, ...], runs: int) -> list[dict[str, Any]]:
    if not bring_up(sets):
        return [{"verdict": "error", **{figure: None for figure in FIGURES}} for _ in range(runs)]
    rows = []
    for run in range(runs):
        rows.append(one_drill(drill, sets))
        row = rows[-1]
        print(f"run {run + 1} {name:15} {row['verdict']:8} promoted {show(row['promoted_s'])} s  rto "
              f"{show(row['rto_s'])} s  acknowledged {row['acknowledged']}  lost {row['lost']}  unknown "
              f"{row['unknown']}", flush=True)
    return rows


def table(rows: dict[str, list[dict[str, Any]]]) -> None:
    names = list(rows)
    print(f"  {'figure':13}" + "".join(f"{n + ' median':>24}{'worst':>9}{'ratio':>7}" for n in names))
    for figure in FIGURES:
        medians = [median([r[figure] for r in rows[n]]) for n in names]
        cells = []
        for name, value in zip(names, medians, strict=True):
            ratio = value / medians[0] if value is not None and medians[0] else None
            cells.append(f"{show(value):>24}{show(worst([r[figure] for r in rows[name]])):>9}{show(ratio):>7}")
        print(f"  {figure:13}" + "".join(cells))
    for name in names:
        verdicts = [r["verdict"] for r in rows[name]]
        lossy = sum(1 for r in rows[name] if r["lost"])
        print(f"  {name}: runs with a lost acknowledged write: {lossy} of {len(verdicts)}; verdicts: "
              + ", ".join(f"{v} {verdicts.count(v)}" for v in sorted(set(verdicts))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sync-runs", type=int, default=20)
    args = parser.parse_args()
    rows = {name: run_shape(name, drill, sets, args.sync_runs if sync else args.runs)
            for name, drill, sets, sync in SHAPES}
    labctl("down", LAB)
    print(f"\n{LAB}: kill-primary runs per shape ({args.runs}, synchronous mode {args.sync_runs}); "
          f"baseline {SHAPES[0][0]}")
    table(rows)


if __name__ == "__main__":
    main()
