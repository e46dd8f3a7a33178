"""Start-up time of the commands people type first: `labctl --help` and `labctl list`, against
the interpreter itself (`python -c pass`) and click alone (`python -c "import click"`), the floor
any click CLI pays. Runs alternate round by round, so a busy machine slows every command alike.

Usage: .venv/bin/python bench/startup.py [--runs 20] [--against DIR]
--against DIR also runs the labctl commands from another checkout (e.g. `git archive main | tar
-x -C /tmp/before`) in the same rounds and prints before/after side by side.
Target (issue 11): `labctl --help` and `labctl list` under 0.25 s, median (0.32 s before).
Measured (issue 11, `--runs 30 --against` a copy of main, a 2-core machine at load 2.8-4.1):
`labctl list` 0.506 -> 0.295 s, `labctl --help` 0.428 -> 0.087 s (ratio to `import click`
8.34 -> 4.87 and 7.06 -> 1.44; before/after 1.71 and 4.92). `list` still imports jsonschema,
because it validates every lab (about 45 ms of its time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINES = {"python -c pass": ["-c", "pass"], "python -c 'import click'": ["-c", "import click"]}
COMMANDS = {"labctl --help": ["-m", "labctl", "--help"], "labctl list": ["-m", "labctl", "list"]}
TARGET_S = 0.25


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=cwd, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def cases(against: Path | None) -> dict[str, tuple[list[str], Path]]:
    """Name -> (interpreter arguments, folder to run in): `-m labctl` imports that folder's labctl."""
    found = {name: (args, REPO) for name, args in BASELINES.items()}
    for name, args in COMMANDS.items():
        if against is not None:
            found[f"{name} (before)"] = (args, against)
        found[name] = (args, REPO)
    return found


def measure(runs: int, against: Path | None, env: dict[str, str]) -> dict[str, list[float]]:
    todo = cases(against)
    for args, cwd in todo.values():  # warm-up: byte-compiles both checkouts
        timed(args, cwd, env)
    times: dict[str, list[float]] = {name: [] for name in todo}
    for _ in range(runs):
        for name, (args, cwd) in todo.items():
            times[name].append(timed(args, cwd, env))
    return times


def report(times: dict[str, list[float]], runs: int) -> None:
    click_s = statistics.median(times["python -c 'import click'"])
    print(f"start-up, {runs} alternating runs each, seconds (median, min, max)")
    print(f"  {'':34} {'median':>7} {'min':>7} {'max':>7} {'/ click':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:34} {median:7.3f} {min(values):7.3f} {max(values):7.3f} {median / click_s:8.2f}")
    for name in COMMANDS:
        median = statistics.median(times[name])
        before = times.get(f"{name} (before)")
        change = f", before/after {statistics.median(before) / median:.2f}" if before else ""
        verdict = "under" if median < TARGET_S else "OVER"
        print(f"  {name}: {median:.3f} s, {verdict} the {TARGET_S} s target{change}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--against", type=Path, default=None, help="another checkout to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labctl-startup-") as home:
        env = {**os.environ, "LABCTL_HOME": home}
        report(measure(args.runs, args.against, env), args.runs)


if __name__ == "__main__":
    main()
