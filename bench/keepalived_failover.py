"""Repeated kill-active-lb drills on lb-keepalived: how long the standby takes to claim the
floating address, and how many requests fail, at one or more VRRP advertisement intervals.

Each interval gets its own `labctl up --set lb.advert_interval=...` and N drills. For each run:
verdict, takeover (keepalived's MASTER on the standby, from the kill), the address seen moved
(`ip addr` inside the nodes), the clients' takeover (first answer after the last failed request)
and failed requests. Printed per interval: medians and worst; the ratio column is the median
takeover over the first interval's (the baseline), beside VRRP's own master-down interval
(3 x advert + skew) for the standby's priority.

Usage: .venv/bin/python bench/keepalived_failover.py [--runs 5] [--adverts 1s,200ms]
Target (issue 15): the takeover median and the failed requests of kill-active-lb.
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
LAB, DRILL = "lb-keepalived", "kill-active-lb"
FIGURES = ("takeover_s", "address_seen_s", "client_takeover_s", "failed_requests")
STANDBY_PRIORITY = 100


def labctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LABCTL, *args], cwd=REPO, capture_output=True, text=True)


def one_drill() -> dict[str, Any]:
    result = labctl("drill", LAB, DRILL, "--json")
    if not result.stdout.strip():
        error = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  drill error: {error}", flush=True)
        return {"verdict": "error", **{figure: None for figure in FIGURES}}
    report = json.loads(result.stdout)
    takeover = report.get("takeover") or {}
    return {"verdict": report["verdict"], **{figure: takeover.get(figure) for figure in FIGURES}}


def master_down_s(advert: str) -> float:
    """RFC 5798's Master_Down_Interval: 3 adverts plus a skew of (256 - priority)/256 adverts."""
    seconds = float(advert[:-2]) / 1000 if advert.endswith("ms") else float(advert.rstrip("s"))
    return 3 * seconds + (256 - STANDBY_PRIORITY) / 256 * seconds


def median(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def worst(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return max(present) if present else None


def show(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run_interval(advert: str, runs: int) -> list[dict[str, Any]]:
    up = labctl("up", LAB, f"--set=lb.advert_interval={advert}")
    if up.returncode != 0:
        raise SystemExit(f"labctl up {LAB} failed:\n{up.stderr}")
    rows = []
    for run in range(runs):
        row = one_drill()
        rows.append(row)
        print(f"advert {advert} run {run + 1}/{runs}: {row['verdict']}, takeover {show(row['takeover_s'])} s, "
              f"seen {show(row['address_seen_s'])} s, client {show(row['client_takeover_s'])} s, "
              f"failed {row['failed_requests']}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--adverts", default="1s,200ms", help="advertisement intervals; the first is the baseline")
    args = parser.parse_args()
    results = {advert: run_interval(advert, args.runs) for advert in args.adverts.split(",")}
    labctl("up", LAB)  # back at the lab's own values
    baseline = median([r["takeover_s"] for r in next(iter(results.values()))])
    print("\nadvert  runs  pass  master-down s  takeover median/worst s  ratio  seen median s  "
          "client median s  failed median/worst")
    for advert, rows in results.items():
        takeover = median([r["takeover_s"] for r in rows])
        ratio = "-" if takeover is None or not baseline else f"{takeover / baseline:.2f}"
        passed = sum(1 for r in rows if r["verdict"] == "pass")
        print(f"{advert:<7} {len(rows):<5} {passed:<5} {master_down_s(advert):<14.2f} "
              f"{show(takeover)} / {show(worst([r['takeover_s'] for r in rows])):<13} {ratio:<6} "
              f"{show(median([r['address_seen_s'] for r in rows])):<14} "
              f"{show(median([r['client_takeover_s'] for r in rows])):<16} "
              f"{show(median(failed := [r['failed_requests'] for r in rows]))} / {show(worst(failed))}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
