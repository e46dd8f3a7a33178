"""Repeated kill-primary drills: RTO with detection, promotion and re-route broken out, and
lost acknowledged writes, for the semi-sync lab against the async lab run side by side.

Each run is `labctl drill LAB kill-primary` (primary cut off from its replicas for 2 s,
then killed; labctl fails over automatically). The labs alternate run by run, so both
see the same machine. The async lab is the baseline: the ratio column is semisync/async.

With --baseline DIR (a checkout of an older labctl, e.g. `git worktree add /tmp/before
HEAD~3`), the baseline is instead the same lab run by that checkout's code, alternating
with this one's: the failover code's before and after, on the same machine at the same time.

Usage: .venv/bin/python bench/failover.py [--runs 5] [--flavor mysql|mariadb]
       [--labs db-semisync,db-failover] [--baseline DIR]
Targets: issue 5, median RTO under 3 s and zero lost acknowledged writes on semi-sync in
every run; issue 13, semi-sync median RTO under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LABCTL = [sys.executable, "-m", "labctl"]
FIGURES = ("rto_s", "detection_s", "promotion_s", "reroute_s", "lost", "acknowledged", "write_p50_ms")


@dataclass(frozen=True)
class Arm:
    """One column of the table: a lab, run by the labctl code of one checkout."""

    name: str
    lab: str
    checkout: Path = REPO


def labctl(*args: str, checkout: Path = REPO) -> subprocess.CompletedProcess[str]:
    # `python -m labctl` imports the package of the folder it runs in; every checkout keeps
    # its lab state (compose files, secrets, runs) in this one's home.
    environment = {**os.environ, "LABCTL_HOME": str(REPO)}
    return subprocess.run([*LABCTL, *args], cwd=checkout, capture_output=True, text=True, env=environment)


def one_drill(arm: Arm) -> dict[str, Any]:
    lab = arm.lab
    result = labctl("drill", lab, "kill-primary", "--json", checkout=arm.checkout)
    if not result.stdout.strip():
        # A drill that ended in an error still counts as a run: its RTO is missing.
        error = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  {lab}: drill error: {error}", flush=True)
        labctl("db", "failover", lab, checkout=arm.checkout)
        labctl("db", "rejoin", lab, checkout=arm.checkout)
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


def arms(labs: list[str], baseline: Path | None) -> list[Arm]:
    """The measured lab first, the baseline last."""
    if baseline is None:
        return [Arm(lab, lab) for lab in labs]
    if not (baseline / "labctl" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {baseline}: not a labctl checkout")
    return [Arm(labs[0], labs[0]), Arm(f"{labs[0]}@{baseline.name}", labs[0], baseline.resolve())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--flavor", choices=["mysql", "mariadb"], default="mysql")
    parser.add_argument("--labs", default="db-semisync,db-failover", help="measured lab first, baseline second")
    parser.add_argument("--baseline", type=Path, help="a checkout of older labctl code: the baseline runs "
                        "the first lab with it")
    args = parser.parse_args()
    columns = arms(args.labs.split(","), args.baseline)
    for lab in dict.fromkeys(arm.lab for arm in columns):
        labctl("down", lab)
        up = labctl("up", lab, "--set", f"db.flavor={args.flavor}")
        if up.returncode != 0:
            raise SystemExit(f"labctl up {lab} failed:\n{up.stderr}")
    rows: dict[str, list[dict[str, Any]]] = {arm.name: [] for arm in columns}
    for run in range(args.runs):
        for arm in columns:
            rows[arm.name].append(one_drill(arm))
            row = rows[arm.name][-1]
            print(f"run {run + 1} {arm.name:12} {row['verdict']:8} rto {show(row['rto_s'])} s  "
                  f"lost {row['lost']}  acknowledged {row['acknowledged']}", flush=True)
    for lab in dict.fromkeys(arm.lab for arm in columns):
        labctl("down", lab)
    print_table(args, columns, rows)


def print_table(args: argparse.Namespace, columns: list[Arm], rows: dict[str, list[dict[str, Any]]]) -> None:
    names = [arm.name for arm in columns]
    print(f"\n{args.flavor}, {args.runs} kill-primary drills per column, alternating; baseline {names[-1]}")
    print(f"  {'figure':14}" + "".join(f"{name + ' median':>26}{'worst':>9}" for name in names) + f"{'ratio':>8}")
    for figure in FIGURES:
        medians = [median([r[figure] for r in rows[name]]) for name in names]
        worsts = [worst([r[figure] for r in rows[name]]) for name in names]
        ratio = medians[0] / medians[-1] if medians[0] is not None and medians[-1] else None
        print(f"  {figure:14}" + "".join(f"{show(m):>26}{show(w):>9}" for m, w in zip(medians, worsts, strict=True))
              + f"{show(ratio):>8}")
    measured = rows[names[0]]
    lost_runs = sum(1 for r in measured if r["lost"])
    counted = sum(1 for r in measured if r["lost"] is not None)
    verdicts = [r["verdict"] for r in measured]
    print(f"\n  {names[0]}: runs with a lost acknowledged write: {lost_runs} of {counted} counted "
          f"({args.runs} runs; verdicts: " + ", ".join(f"{v} {verdicts.count(v)}" for v in sorted(set(verdicts))) + ")")


if __name__ == "__main__":
    main()
