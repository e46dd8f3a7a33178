"""Repeated leader elections: a drill that cuts the leader (or primary) off, against the drill
that kills it as the baseline, run alternately on one lab so both see the same machine.

For each run: verdict, election time (a new leader or primary seen, from the fault in place),
RTO, lost acknowledged writes, and what the cut-off member acknowledged on its own. The ratio
column is measured/baseline.

Usage: .venv/bin/python bench/elections.py [--runs 20] [--lab consensus-etcd]
       [--drills partition-leader,kill-leader] [--set etcd.read_back=linearizable]
   or: .venv/bin/python bench/elections.py --lab db-group-replication
       --drills partition-primary,kill-primary
Target (issues 13 and 14): 0 lost acknowledged writes and 0 minority commits in every run.
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
FIGURES = ("election_s", "rto_s", "lost", "minority", "acknowledged")


def labctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LABCTL, *args], cwd=REPO, capture_output=True, text=True)


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """One run's figures, from an etcd lab's `election` or a Group Replication lab's `group`."""
    etcd, group = report.get("election") or {}, report.get("group") or {}
    election = etcd.get("election_s") if etcd else (group.get("election") or {}).get("seconds")
    minority = etcd.get("minority_commits") if etcd else group.get("minority_writes")
    writes = report.get("writes") or {}
    return {"verdict": report["verdict"], "election_s": election, "rto_s": report.get("rto_s"),
            "lost": writes.get("lost"), "minority": minority, "acknowledged": writes.get("acknowledged")}


def one_drill(lab: str, drill: str) -> dict[str, Any]:
    result = labctl("drill", lab, drill, "--json")
    if not result.stdout.strip():
        error = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  {drill}: drill error: {error}", flush=True)
        labctl("up", lab)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lab", default="consensus-etcd")
    parser.add_argument("--drills", default="partition-leader,kill-leader", help="measured first, baseline second")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="passed to labctl up")
    args = parser.parse_args()
    drills = args.drills.split(",")
    up = labctl("up", args.lab, *[f"--set={o}" for o in args.overrides])
    if up.returncode != 0:
        raise SystemExit(f"labctl up {args.lab} failed:\n{up.stderr}")
    rows: dict[str, list[dict[str, Any]]] = {drill: [] for drill in drills}
    for run in range(args.runs):
        for drill in drills:
            rows[drill].append(one_drill(args.lab, drill))
            row = rows[drill][-1]
            print(f"run {run + 1} {drill:18} {row['verdict']:6} election {show(row['election_s'])} s  "
                  f"rto {show(row['rto_s'])} s  lost {row['lost']}  minority {row['minority']}", flush=True)
    labctl("down", args.lab)
    print(f"\n{args.lab}, {args.runs} runs per drill, alternating; baseline {drills[-1]}")
    print(f"  {'figure':14}" + "".join(f"{d + ' median':>26}{'worst':>9}" for d in drills) + f"{'ratio':>8}")
    for figure in FIGURES:
        medians = [median([r[figure] for r in rows[d]]) for d in drills]
        worsts = [worst([r[figure] for r in rows[d]]) for d in drills]
        ratio = medians[0] / medians[-1] if medians[0] is not None and medians[-1] else None
        print(f"  {figure:14}" + "".join(f"{show(m):>26}{show(w):>9}" for m, w in zip(medians, worsts, strict=True))
              + f"{show(ratio):>8}")
    for drill in drills:
        verdicts = [r["verdict"] for r in rows[drill]]
        bad = sum(1 for r in rows[drill] if r["lost"] or r["minority"])
        print(f"  {drill}: runs with a lost write or a minority commit: {bad} of {args.runs}; verdicts: "
              + ", ".join(f"{v} {verdicts.count(v)}" for v in sorted(set(verdicts))))


if __name__ == "__main__":
    main()
