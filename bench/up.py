"""Time to healthy: `labctl up LAB` against plain `docker compose up -d --wait` on the
same rendered file, alternating, several runs; prints medians and the ratio.

Usage: .venv/bin/python bench/up.py [--lab lb-nginx] [--runs 5]
Target (issue 2): labctl's overhead within 10% or 1 s of plain Compose.
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


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def down(lab: str) -> None:
    subprocess.run([*LABCTL, "down", lab], check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", default="lb-nginx")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    down(args.lab)
    timed([*LABCTL, "up", args.lab])  # warm-up: builds images if needed, renders compose/<lab>/
    down(args.lab)
    compose_file = REPO / "compose" / args.lab / "compose.yaml"
    plain = ["docker", "compose", "-f", str(compose_file), "up", "-d", "--wait"]
    labctl_times, compose_times = [], []
    for run in range(args.runs):
        labctl_times.append(timed([*LABCTL, "up", args.lab]))
        down(args.lab)
        compose_times.append(timed(plain))
        down(args.lab)
        print(f"run {run + 1}: labctl up {labctl_times[-1]:.2f}s   compose up --wait {compose_times[-1]:.2f}s")
    ratios = [a / b for a, b in zip(labctl_times, compose_times, strict=True)]
    med_l, med_c = statistics.median(labctl_times), statistics.median(compose_times)
    print(f"\n{args.lab}, {args.runs} runs, alternating")
    print(f"  labctl up             median {med_l:.2f}s  (min {min(labctl_times):.2f}, max {max(labctl_times):.2f})")
    print(f"  docker compose --wait median {med_c:.2f}s  (min {min(compose_times):.2f}, max {max(compose_times):.2f})")
    print(f"  ratio labctl/compose  median {statistics.median(ratios):.2f}  overhead {med_l - med_c:+.2f}s")


if __name__ == "__main__":
    main()
