"""What idle labs cost the machine: host CPU while they sit up with no load (health checks,
agents, heartbeats), in windows, against the same windows with none of them up.

Usage: .venv/bin/python bench/idle.py [--labs db-failover,db-semisync] [--windows 5] [--window-s 10]
Prints the median busy and system share of all cores with the labs up and without, side
by side, and what the labs add. Labs it brings up it takes down again; run it with nothing
else on the machine. Measured for issue 5: two DB labs idle went from 82 % to 54-59 % of a
2-core machine when the health agent stopped starting a mysql client per check.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABCTL = [sys.executable, "-m", "labctl"]
SETTLE_S = 15.0


def cpu_times() -> tuple[int, int, int]:
    """Busy, system and total jiffies of all cores since boot (/proc/stat's first line)."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(v) for v in handle.readline().split()[1:8]]
    user, nice, system, idle, iowait, irq, softirq = fields
    busy = user + nice + system + irq + softirq
    return busy, system, busy + idle + iowait


def windows(count: int, seconds: float) -> list[tuple[float, float]]:
    """Busy and system percent of all cores in each of `count` windows."""
    shares = []
    for _ in range(count):
        busy0, sys0, all0 = cpu_times()
        time.sleep(seconds)
        busy1, sys1, all1 = cpu_times()
        total = max(1, all1 - all0)
        shares.append((100.0 * (busy1 - busy0) / total, 100.0 * (sys1 - sys0) / total))
    return shares


def labctl(*args: str) -> None:
    subprocess.run([*LABCTL, *args], check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labs", default="db-failover,db-semisync")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window-s", type=float, default=10.0)
    args = parser.parse_args()
    labs = [lab for lab in args.labs.split(",") if lab]

    for lab in labs:
        labctl("down", lab)
    baseline = windows(args.windows, args.window_s)
    print(f"baseline (none up): busy {[round(b, 1) for b, _ in baseline]} %", flush=True)
    try:
        for lab in labs:
            labctl("up", lab)
        time.sleep(SETTLE_S)
        measured = windows(args.windows, args.window_s)
        print(f"{', '.join(labs)} up: busy {[round(b, 1) for b, _ in measured]} %", flush=True)
    finally:
        for lab in labs:
            labctl("down", lab)
    report(labs, baseline, measured, args)


def report(labs: list[str], baseline: list[tuple[float, float]], measured: list[tuple[float, float]],
           args: argparse.Namespace) -> None:
    base_busy = statistics.median(b for b, _ in baseline)
    base_sys = statistics.median(s for _, s in baseline)
    busy = statistics.median(b for b, _ in measured)
    system = statistics.median(s for _, s in measured)
    print(f"\n{', '.join(labs)} idle, {args.windows} windows of {args.window_s:g} s, share of all cores (median)")
    print(f"  {'':12} {'labs up':>9} {'none up':>9} {'added':>9}")
    print(f"  {'busy %':12} {busy:9.1f} {base_busy:9.1f} {busy - base_busy:+9.1f}")
    print(f"  {'system %':12} {system:9.1f} {base_sys:9.1f} {system - base_sys:+9.1f}")
    if base_busy >= 1.0:
        print(f"  ratio busy labs up / none up: {busy / base_busy:.2f}")


if __name__ == "__main__":
    main()
