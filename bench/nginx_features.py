"""The figures of the nginx-features guide: each Nginx feature on and off, same machine,
runs alternating, medians over runs.

- static: req/s of /static/index.html with labctl's load (Locust) and with wrk, and with
  worker_processes 1 against auto;
- TLS: the same over HTTPS, and the handshake time of a new connection (curl);
- cache: req/s, p50 and hit ratio of /sleep?ms=50 with the cache off and on;
- gzip: bytes of /static/catalog.json, and req/s and Nginx CPU per request off and on;
- rate limit: requests accepted and rejected (429) in a closed-loop load from one client.

Usage: .venv/bin/python bench/nginx_features.py [--runs 3] [--duration 10]
The lab nginx-features is brought up (ports 8110, 8111) and taken down at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LABCTL = [sys.executable, "-m", "labctl"]
LAB = "nginx-features"
LB = f"labctl-{LAB}-lb"
HTTP, HTTPS = "http://127.0.0.1:8110", "https://127.0.0.1:8111"
Row = dict[str, float]


class Disturbed(Exception):
    """A run that something else on the machine broke (the lab removed under it): run it again."""


def labctl(*args: str) -> str:
    result = subprocess.run([*LABCTL, *args], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise Disturbed(f"labctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def up(*settings: str) -> None:
    labctl("up", LAB, *[item for setting in settings for item in ("--set", setting)])


def load(path: str, duration: int, users: int = 50, processes: str = "2", endpoint: str = "http",
         rejects: bool = False) -> dict[str, Any]:
    out = labctl("load", LAB, "--path", path, "--users", str(users), "--processes", processes,
                 "--duration", f"{duration}s", "--endpoint", endpoint, "--json")
    summary: dict[str, Any] = json.loads(out)
    if not rejects and summary["failures"] > 0.001 * summary["requests"]:
        raise Disturbed(f"{summary['failures']} of {summary['requests']} requests to {path} failed")
    return summary


def wrk(url: str, duration: int) -> float:
    out = subprocess.run(["wrk", "-t2", "-c50", f"-d{duration}s", url], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if match is None:
        raise SystemExit(f"no Requests/sec in wrk's output:\n{out}")
    return float(match.group(1))


def lb_cpu_seconds() -> float:
    """CPU time the Nginx container has used so far (cgroup v1 or v2)."""
    script = ("cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || "
              "awk '/^usage_usec/ {print $2 * 1000}' /sys/fs/cgroup/cpu.stat")
    out = subprocess.run(["docker", "exec", LB, "sh", "-c", script], capture_output=True, text=True, check=True)
    return int(float(out.stdout.split()[0])) / 1e9


def handshake_ms(samples: int = 30) -> float:
    """Median time to a finished TLS handshake on a new connection, as curl measures it."""
    ca = REPO / "compose" / LAB / "lb" / "tls" / "ca.pem"
    times = []
    for _ in range(samples):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert", str(ca), "-w",
                              "%{time_connect} %{time_appconnect}", f"{HTTPS}/labctl-health"],
                             capture_output=True, text=True, check=True).stdout.split()
        times.append((float(out[1]) - float(out[0])) * 1000)
    return statistics.median(times)


def cache_statuses(url: str, stop: threading.Event, seen: Counter[str]) -> None:
    while not stop.is_set():
        with urllib.request.urlopen(url, timeout=5) as response:
            seen[response.headers.get("X-Cache-Status", "none")] += 1
        time.sleep(0.05)


def cache_run(duration: int) -> Row:
    stop, seen = threading.Event(), Counter[str]()
    sampler = threading.Thread(target=cache_statuses, args=(f"{HTTP}/sleep?ms=50", stop, seen))
    sampler.start()
    try:
        summary = load("/sleep?ms=50", duration, users=10, processes="1")
    finally:
        stop.set()
        sampler.join()
    return {"rps": summary["rps"], "p50_ms": summary["latency_ms"]["p50"], "p95_ms": summary["latency_ms"]["p95"],
            "hit_ratio": seen["HIT"] / max(1, sum(seen.values()))}


def gzip_run(duration: int) -> Row:
    before = lb_cpu_seconds()
    summary = load("/static/catalog.json", duration, users=20, processes="1")
    cpu = lb_cpu_seconds() - before
    return {"rps": summary["rps"], "p50_ms": summary["latency_ms"]["p50"],
            "nginx_cpu_us_per_request": cpu / max(1, summary["requests"]) * 1e6,
            "nginx_cpu_cores": cpu / summary["duration_s"]}


def body_bytes(gzip: bool) -> float:
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    request = urllib.request.Request(f"{HTTP}/static/catalog.json", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return float(len(response.read()))


def one_run(duration: int) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    up("lb.tls=on")
    static = load("/static/index.html", duration)
    secure = load("/static/index.html", duration, endpoint="https")
    rows["static"] = {"locust_rps": static["rps"], "locust_bound": float(static["load_gen_bound"]),
                      "wrk_rps": wrk(f"{HTTP}/static/index.html", duration)}
    rows["tls"] = {"locust_rps": secure["rps"], "wrk_rps": wrk(f"{HTTPS}/static/index.html", duration),
                   "handshake_ms": handshake_ms()}
    up("lb.tls=on", "lb.worker_processes=1")
    rows["workers_1"] = {"wrk_rps": wrk(f"{HTTP}/static/index.html", duration)}
    up()
    rows["cache_off"], rows["gzip_off"] = cache_run(duration), gzip_run(duration)
    rows["gzip_off"]["bytes"] = body_bytes(gzip=False)
    up("lb.cache=on", "lb.gzip=on")
    rows["cache_on"], rows["gzip_on"] = cache_run(duration), gzip_run(duration)
    rows["gzip_on"]["bytes"] = body_bytes(gzip=True)
    up("lb.rate_limit=on")
    limited = load("/static/index.html", duration, users=10, processes="1", rejects=True)
    rows["rate_limit"] = {"requests": limited["requests"], "rejected": limited["failures"],
                          "accepted": limited["requests"] - limited["failures"]}
    return rows


def medians(runs: list[dict[str, Row]]) -> dict[str, Row]:
    return {name: {key: round(statistics.median(run[name][key] for run in runs), 3) for key in runs[0][name]}
            for name in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement")
    args = parser.parse_args()
    ssl.create_default_context()  # fail early on a Python without ssl
    runs: list[dict[str, Row]] = []
    try:
        for _attempt in range(3 * args.runs):
            if len(runs) == args.runs:
                break
            print(f"run {len(runs) + 1}/{args.runs}", file=sys.stderr)
            try:
                runs.append(one_run(args.duration))
            except Disturbed as exc:
                print(f"run disturbed, running it again: {exc}", file=sys.stderr)
        if not runs:
            raise SystemExit("every run was disturbed; is something else using the lab or its ports?")
    finally:
        labctl("down", LAB)
    print(json.dumps({"runs": len(runs), "duration_s": args.duration, "median": medians(runs)}, indent=2))


if __name__ == "__main__":
    main()
