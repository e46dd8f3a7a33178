"""Repeated kill-master drills on kv-redis-cluster: failover time with Redis's default
cluster-node-timeout (15 s) against the lab's shorter one, and acknowledged writes lost to
asynchronous replication against the same kill with every SET waiting for its replica (WAIT 1).

Each shape is brought up once (`labctl up --set ...`, the drill file's `up_with`) and its drill
run --runs times in a row; the shapes cannot alternate run by run because a new node timeout
recreates every node. For each run: verdict, when the others marked the master failed, when
its replica was promoted (from the kill in place), RTO (the first write acknowledged by the
promoted replica), acknowledged, lost and unknown writes. The ratio column is measured/baseline
(the first shape, the lab as shipped).

Usage: .venv/bin/python bench/redis_failover.py [--runs 5]
Target (issue 14): the tuned timeout fails over in a fraction of the default's time; with
WAIT 1, 0 lost acknowledged writes in every run.
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
LAB = "kv-redis-cluster"
# (name, drill, what `up` sets for it): the baseline first.
SHAPES = (
    ("tuned 2s", "kill-master", ("redis.node_timeout=2s", "redis.wait_replicas=0")),
    ("default 15s", "kill-master-default-timeout", ("redis.node_timeout=15s", "redis.wait_replicas=0")),
    ("tuned 2s + WAIT 1", "kill-master-wait", ("redis.node_timeout=2s", "redis.wait_replicas=1")),
)
FIGURES = ("failed_s", "promoted_s", "rto_s", "acknowledged", "lost", "unknown")


def labctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LABCTL, *args], cwd=REPO, capture_output=True, text=True)


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """One run's figures from its drill.json."""
    failover, writes = report.get("failover") or {}, report.get("writes") or {}
    return {"verdict": report["verdict"], "failed_s": failover.get("failed_s"),
            "promoted_s": failover.get("promoted_s"), "rto_s": report.get("rto_s"),
            "acknowledged": writes.get("acknowledged"), "lost": writes.get("lost"), "unknown": writes.get("unknown")}


def one_drill(drill: str, sets: tuple[str, ...]) -> dict[str, Any]:
    result = labctl("drill", LAB, drill, "--json")
    if not result.stdout.strip():
        # The last line that says something (Locust's tables end in rules of dashes).
        lines = [line for line in result.stderr.splitlines() if line.strip().strip("-|")]
        error = " / ".join(lines[-3:]) or "no output"
        print(f"  {drill}: drill error (exit {result.returncode}): {error}", flush=True)
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


def run_shape(name: str, drill: str, sets: tuple[str, ...], runs: int) -> list[dict[str, Any]]:
    up = labctl("up", LAB, *[f"--set={s}" for s in sets])
    if up.returncode != 0:
        raise SystemExit(f"labctl up {LAB} {' '.join(sets)} failed:\n{up.stderr}")
    rows = []
    for run in range(runs):
        rows.append(one_drill(drill, sets))
        row = rows[-1]
        print(f"run {run + 1} {name:18} {row['verdict']:6} failed {show(row['failed_s'])} s  promoted "
              f"{show(row['promoted_s'])} s  rto {show(row['rto_s'])} s  lost {row['lost']}  unknown "
              f"{row['unknown']}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = {name: run_shape(name, drill, sets, args.runs) for name, drill, sets in SHAPES}
    labctl("down", LAB)
    names = [name for name, _, _ in SHAPES]
    print(f"\n{LAB}, {args.runs} kill-master runs per shape; baseline {names[0]}")
    print(f"  {'figure':13}" + "".join(f"{n + ' median':>26}{'worst':>9}{'ratio':>7}" for n in names))
    for figure in FIGURES:
        medians = [median([r[figure] for r in rows[n]]) for n in names]
        cells = []
        for name, value in zip(names, medians, strict=True):
            ratio = value / medians[0] if value is not None and medians[0] else None
            cells.append(f"{show(value):>26}{show(worst([r[figure] for r in rows[name]])):>9}{show(ratio):>7}")
        print(f"  {figure:13}" + "".join(cells))
    for name in names:
        verdicts = [r["verdict"] for r in rows[name]]
        lossy = sum(1 for r in rows[name] if r["lost"])
        print(f"  {name}: runs with a lost acknowledged write: {lossy} of {args.runs}; verdicts: "
              + ", ".join(f"{v} {verdicts.count(v)}" for v in sorted(set(verdicts))))


if __name__ == "__main__":
    main()
