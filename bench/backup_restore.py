"""Repeated accidental-drop drills on db-backup: how long the backup and the restore to just
before the DROP take (loading the dump, replaying the binary log), how long writes failed, and
acknowledged writes lost (the target: 0 in every run), per flavor.

Each flavor is brought up once (`labctl up db-backup --set db.flavor=F`) and its drill run
--runs times in a row; the lab is left down. The ratio column is the median against the first
flavor's (MySQL, the lab as shipped).

Usage: .venv/bin/python bench/backup_restore.py [--runs 3] [--flavors mysql,mariadb]
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
LAB = "db-backup"
FIGURES = ("backup_s", "restore_s", "load_s", "replay_s", "replayed", "rto_s", "failed", "acknowledged", "lost")


def labctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LABCTL, *args], cwd=REPO, capture_output=True, text=True)


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """One run's figures from its drill.json."""
    restore, writes = report.get("restore") or {}, report.get("writes") or {}
    return {"verdict": report["verdict"], "backup_s": restore.get("backup_s"), "restore_s": restore.get("seconds"),
            "load_s": restore.get("load_s"), "replay_s": restore.get("replay_s"),
            "replayed": restore.get("transactions_replayed"), "rto_s": report.get("rto_s"),
            "failed": writes.get("failed"), "acknowledged": writes.get("acknowledged"), "lost": writes.get("lost")}


def runs_of(flavor: str, runs: int) -> list[dict[str, Any]]:
    up = labctl("up", LAB, "--set", f"db.flavor={flavor}", "--timeout", "300")
    if up.returncode != 0:
        sys.exit(f"labctl up {LAB} --set db.flavor={flavor} failed:\n{up.stderr[-2000:]}")
    found = []
    for run in range(runs):
        drill = labctl("drill", LAB, "accidental-drop", "--json")
        if not drill.stdout.strip():
            # A drill refused before it ran (a lab seen degraded on a machine others load) is not a run.
            print(f"{flavor} run {run + 1}: no report: {drill.stderr.strip()[-300:]}", flush=True)
            continue
        found.append(figures(json.loads(drill.stdout)))
        print(f"{flavor} run {run + 1}: {found[-1]}", flush=True)
    labctl("down", LAB)
    return found


def median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row[key] is not None]
    return round(statistics.median(values), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flavors", default="mysql,mariadb")
    args = parser.parse_args()
    results = {flavor: runs_of(flavor, args.runs) for flavor in args.flavors.split(",")}
    baseline = next(iter(results.values()))
    print(f"\n{'figure':<14}" + "".join(f"{f + ' median':>16}{'ratio':>8}" for f in results))
    for key in FIGURES:
        line = f"{key:<14}"
        for rows in results.values():
            value, base = median(rows, key), median(baseline, key)
            ratio = f"{value / base:.2f}" if value is not None and base else "-"
            line += f"{'-' if value is None else value:>16}{ratio:>8}"
        print(line)
    verdicts = {flavor: [row["verdict"] for row in rows] for flavor, rows in results.items()}
    print(f"verdicts: {verdicts}")


if __name__ == "__main__":
    main()
