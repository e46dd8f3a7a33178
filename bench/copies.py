"""One host for a class: twenty `labctl up LAB --as NAME` copies of a lab side by side.

Brings up one copy alone (the baseline), then the rest a few at a time; reports the time to
bring all up (and the ratio against the lone copy), the memory they use (docker stats per
container, and the host's MemAvailable before and after), that each copy serves on its own
port, and that a drill, then a killed load balancer, in copy 1 leaves the error counts of
every other copy at zero (a probe thread per copy GETs its port all along). Takes every copy
down at the end, and checks nothing of them is left.

Usage: .venv/bin/python bench/copies.py [--lab lb-nginx] [--copies 20] [--parallel 4]
       [--drill kill-backend]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABCTL = [sys.executable, "-m", "labctl"]


def labctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*LABCTL, *args], cwd=REPO, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"labctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


RETRIED: list[str] = []
FAILED: list[str] = []
TRIES = 3


def timed_up(lab: str, name: str) -> float:
    """Seconds to bring one copy up (nan when it never came up). On a shared, overloaded host
    a replica can miss its health checks and fail `up`: that copy is taken down and brought up
    again, up to TRIES times in all (each retry is counted and printed)."""
    for _ in range(TRIES):
        started = time.perf_counter()
        if labctl("up", lab, "--as", name, check=False).returncode == 0:
            print(f"  {name} up in {time.perf_counter() - started:.1f}s")
            return time.perf_counter() - started
        print(f"  {name}: up failed after {time.perf_counter() - started:.1f}s, taken down")
        RETRIED.append(name)
        labctl("down", lab, "--as", name)
    FAILED.append(name)
    return float("nan")


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def copy_urls(lab: str, names: list[str]) -> dict[str, str]:
    rows = json.loads(labctl("status", "--all", "--json").stdout)
    return {r["owner"]: r["endpoints"]["http"] for r in rows if r["lab"] == lab and r["owner"] in names}


def container_memory_mib(instances: list[str]) -> float:
    names = [line for i in instances for line in _containers_of(i)]
    stats = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{json .}}", *names],
                           capture_output=True, text=True, check=True).stdout
    return sum(_mib(json.loads(line)["MemUsage"].split("/")[0]) for line in stats.splitlines())


def _containers_of(instance: str) -> list[str]:
    listed = subprocess.run(["docker", "ps", "-q", "--filter", f"label=io.labctl.lab={instance}"],
                            capture_output=True, text=True, check=True).stdout
    return listed.split()


def _mib(text: str) -> float:
    units = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "B": 1 / 1024 / 1024}
    for unit, factor in units.items():
        if text.strip().endswith(unit):
            return float(text.strip()[: -len(unit)]) * factor
    return 0.0


@dataclass
class Probe:
    """GETs one copy's port in a loop and counts what failed."""

    url: str
    requests: int = 0
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            self.requests += 1
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    response.read()
            except OSError:
                self.errors += 1
            time.sleep(0.05)


def probed(urls: dict[str, str], action: list[list[str]]) -> dict[str, Probe]:
    """Run the labctl commands in `action` while a probe per copy GETs its port."""
    probes = {name: Probe(url) for name, url in urls.items()}
    threads = [threading.Thread(target=p.run, daemon=True) for p in probes.values()]
    for thread in threads:
        thread.start()
    time.sleep(2)
    for argv in action:
        result = labctl(*argv, check=False)
        print(f"  labctl {' '.join(argv)}: exit {result.returncode} {_drill_line(result.stdout)}")
    time.sleep(2)
    for probe in probes.values():
        probe.stop.set()
    for thread in threads:
        thread.join()
    return probes


def _drill_line(output: str) -> str:
    try:
        report = json.loads(output)
    except ValueError:
        return ""
    missed = [e["name"] for e in report.get("expectations", []) if not e.get("ok")]
    return (f"(its own load: {report['requests']} requests, {report['failures']} failed, verdict "
            f"{report['verdict']}{', missed ' + ', '.join(missed) if missed else ''})")


def report_probes(title: str, probes: dict[str, Probe], faulty: str) -> bool:
    others = {n: p for n, p in probes.items() if n != faulty}
    failed = {n: p.errors for n, p in others.items() if p.errors}
    total = sum(p.requests for p in others.values())
    print(f"{title}: {len(others)} other copies, {total} GETs, {sum(failed.values())} failed {failed or ''}; "
          f"{faulty} itself: {probes[faulty].errors} of {probes[faulty].requests} failed")
    return not failed


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", default="lb-nginx")
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=4, help="copies brought up at once after the first")
    parser.add_argument("--drill", default="kill-backend")
    args = parser.parse_args()
    names = [f"bench-{i}" for i in range(1, args.copies + 1)]
    instances = [f"{args.lab}--{name}" for name in names]
    before = mem_available_mib()
    try:
        ok = run(args, names, instances, before)
    finally:
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: labctl("down", args.lab, "--as", n, check=False), names))
        left = [i for i in instances if _containers_of(i)]
        print(f"down: {len(names)} copies in {time.perf_counter() - started:.1f}s, left running: {left or 'none'}")
    sys.exit(0 if ok else 1)


def run(args: argparse.Namespace, names: list[str], instances: list[str], before: float) -> bool:
    started = time.perf_counter()
    alone = timed_up(args.lab, names[0])
    with ThreadPoolExecutor(args.parallel) as pool:
        times = [alone, *pool.map(lambda n: timed_up(args.lab, n), names[1:])]
    wall = time.perf_counter() - started
    times = [t for t in times if t == t]  # the copies that came up
    names = [n for n in names if n not in FAILED]
    instances = [f"{args.lab}--{name}" for name in names]
    print(f"came up: {len(names)} of {args.copies}; never came up in {TRIES} tries: {FAILED or 'none'}")
    print(f"up: {len(names)} copies of {args.lab} in {wall:.1f}s ({args.parallel} at a time after the first); "
          f"one copy alone {alone:.1f}s, each up median {statistics.median(times):.1f}s "
          f"(min {min(times):.1f}, max {max(times):.1f}); all / one alone = {wall / alone:.1f}; "
          f"failed ups retried: {RETRIED or 'none'}")
    urls = copy_urls(args.lab, names)
    ports = sorted(int(u.rsplit(":", 1)[1]) for u in urls.values())
    print(f"ports: {len(set(ports))} distinct, {ports[0]}-{ports[-1]}: {' '.join(map(str, ports))}")
    time.sleep(5)  # let start-up settle before memory is read
    containers = container_memory_mib(instances)
    print(f"memory: {containers:.0f} MiB in {sum(len(_containers_of(i)) for i in instances)} containers "
          f"(docker stats), {containers / len(names):.0f} MiB per copy; host MemAvailable "
          f"{before:.0f} -> {mem_available_mib():.0f} MiB")
    serving = sum(1 for url in urls.values() if _serves(url))
    print(f"serving: {serving} of {len(names)} copies answered from a backend on their own port")
    faulty = names[0]
    drill = probed(urls, [["drill", args.lab, args.drill, "--as", faulty, "--json"]])
    drill_ok = report_probes(f"drill {args.drill} in {faulty}", drill, faulty)
    kill = probed(urls, [["chaos", args.lab, "--as", faulty, "kill", "lb"]])
    kill_ok = report_probes(f"kill lb in {faulty}", kill, faulty)
    return not FAILED and serving == len(names) and drill_ok and kill_ok and len(set(ports)) == len(names)


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.headers.get("X-Served-By", "")).startswith("app-")
    except OSError:
        return False


if __name__ == "__main__":
    main()
