"""Repeated kill-primary drills: RTO with detection, promotion and re-route broken out, and
lost acknowledged writes, for the semi-sync lab against the async lab run side by side.

Each run is `labctl drill LAB kill-primary` (primary cut off from its replicas for 2 s,
then killed; labctl fails over automatically). The labs alternate run by run, so both
see the same machine. The async lab is the baseline: the ratio column is semisync/async.

Usage: .venv/bin/python bench/failover.py [--runs 5] [--flavor mysql|mariadb]
       [--labs db-semisync,db-failover]
Target (issue 5): median RTO under 3 s (aiming at 2 s); zero lost acknowledged writes on
semi-sync in every run.
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
FIGURES = ("rto_s", "detection_s", "promotion_s", "reroute_s", "lost", "acknowledged", "write_p50_ms")


def labctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LABCTL, *args], cwd=REPO, capture_output=True, text=True)


def one_drill(lab: str) -> dict[str, Any]:
    result = labctl("drill", lab, "kill-primary", "--json")
    if not result.stdout.strip():
        # A drill that ended in an error still counts as a run: its RTO is missing.
        error = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  {lab}: drill error: {error}", flush=True)
        labctl("db", "failover", lab)
        labctl("db", "rejoin", lab)
        return {"verdict": "error", **{figure: None for figure in FIGURES}}
    report = json.loads(result.stdout)
    failover = report.get("failover") or {}
    return {"verdict": report["verdict"], "rto_s": report.get("rto_s"),
            "detection_s": failover.get("detection_s"), "promotion_s": failover.get("promotion_s"),
            "reroute_s": failover.get("reroute_s"), "lost": report.get("writes", {}).get("lost"),
            "acknowledged": report.get("writes", {}).get("acknowledged"),
            "write_p50_ms": report.get("latency_ms", {}).get("p50")}


def median(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def worst(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return max(present) if present else None


def show(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--flavor", choices=["mysql", "mariadb"], default="mysql")
    parser.add_argument("--labs", default="db-semisync,db-failover", help="measured lab first, baseline second")
    args = parser.parse_args()
    labs = args.labs.split(",")
    for lab in labs:
        labctl("down", lab)
        up = labctl("up", lab, "--set", f"db.flavor={args.flavor}")
        if up.returncode != 0:
            raise SystemExit(f"labctl up {lab} failed:\n{up.stderr}")
    rows: dict[str, list[dict[str, Any]]] = {lab: [] for lab in labs}
    for run in range(args.runs):
        for lab in labs:
            rows[lab].append(one_drill(lab))
            row = rows[lab][-1]
            print(f"run {run + 1} {lab:12} {row['verdict']:8} rto {show(row['rto_s'])} s  "
                  f"lost {row['lost']}  acknowledged {row['acknowledged']}", flush=True)
    for lab in labs:
        labctl("down", lab)
    print(f"\n{args.flavor}, {args.runs} kill-primary drills per lab, alternating; baseline {labs[-1]}")
    print(f"  {'figure':14}" + "".join(f"{lab + ' median':>22}{'worst':>9}" for lab in labs) + f"{'ratio':>8}")
    for figure in FIGURES:
        medians = [median([r[figure] for r in rows[lab]]) for lab in labs]
        worsts = [worst([r[figure] for r in rows[lab]]) for lab in labs]
        ratio = medians[0] / medians[-1] if medians[0] is not None and medians[-1] else None
        print(f"  {figure:14}" + "".join(f"{show(m):>22}{show(w):>9}" for m, w in zip(medians, worsts, strict=True))
              + f"{show(ratio):>8}")
    lost_runs = sum(1 for r in rows[labs[0]] if r["lost"])
    counted = sum(1 for r in rows[labs[0]] if r["lost"] is not None)
    verdicts = [r["verdict"] for r in rows[labs[0]]]
    print(f"\n  {labs[0]}: runs with a lost acknowledged write: {lost_runs} of {counted} counted "
          f"({args.runs} runs; verdicts: " + ", ".join(f"{v} {verdicts.count(v)}" for v in sorted(set(verdicts))) + ")")


if __name__ == "__main__":
    main()
