"""labctl's load generator against wrk on the same Nginx lab, alternating runs.

Prints req/s of each (medians over runs), the ratio labctl/wrk, the CPU the Locust
processes used, and the CPU labctl itself used while observing (its own process, not
Locust's). wrk is Debian's `wrk` (scripts/setup-host.sh installs it).

Usage: .venv/bin/python bench/loadgen.py [--runs 3] [--duration 10] [--users 50] [--processes auto]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABCTL = [sys.executable, "-m", "labctl"]
URL = "http://127.0.0.1:8080/"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def labctl_run(duration: int, users: int, processes: str) -> tuple[float, float, float]:
    """(req/s, Locust CPU seconds, labctl's own CPU seconds) of one labctl load run."""
    before = children_cpu()
    out = subprocess.run([*LABCTL, "load", "lb-nginx", "--duration", f"{duration}s", "--users", str(users),
                          "--processes", processes, "--json"], check=True, cwd=REPO, capture_output=True, text=True)
    total = children_cpu() - before
    summary = json.loads(out.stdout)
    locust = float(summary["load_gen_cpu_seconds"])
    return float(summary["rps"]), locust, total - locust


def wrk_run(duration: int, users: int) -> float:
    out = subprocess.run(["wrk", "-t2", f"-c{users}", f"-d{duration}s", URL], check=True, capture_output=True,
                         text=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--processes", default="auto")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: sudo apt-get install wrk")
    subprocess.run([*LABCTL, "up", "lb-nginx"], check=True, cwd=REPO, capture_output=True)
    labctl_rps, wrk_rps, locust_cpu, own_cpu = [], [], [], []
    for run in range(args.runs):
        rps, locust, own = labctl_run(args.duration, args.users, args.processes)
        labctl_rps.append(rps)
        locust_cpu.append(locust / args.duration)
        own_cpu.append(own)
        wrk_rps.append(wrk_run(args.duration, args.users))
        print(f"run {run + 1}: labctl load {rps:.0f} req/s   wrk {wrk_rps[-1]:.0f} req/s")
    ratios = [a / b for a, b in zip(labctl_rps, wrk_rps, strict=True)]
    print(f"\nlb-nginx, {args.runs} runs of {args.duration}s, {args.users} connections, alternating")
    print(f"  labctl load, --processes {args.processes}: median {statistics.median(labctl_rps):.0f} req/s")
    print(f"  wrk -t2 -c{args.users}: median {statistics.median(wrk_rps):.0f} req/s")
    print(f"  ratio labctl/wrk median {statistics.median(ratios):.2f}")
    locust, own = statistics.median(locust_cpu), statistics.median(own_cpu)
    print(f"  CPU: Locust {locust:.2f} cores while loading; labctl itself {own:.2f} s per run"
          " (start-up, watching, summary and chart)")


if __name__ == "__main__":
    main()
