"""Load generated inside a lab: labctl's client runs in the lab's client container, where
names resolve through the lab's own DNS server, and writes the same sample lines as the
Locust plugin (`time,latency_ms,backend,ok,service_ms`), so summaries, drills and charts read it unchanged."""

from __future__ import annotations

import subprocess
from pathlib import Path

from labctl.runtime import local_runtime

CLIENT_SCRIPT = "/opt/labctl/labclient.py"
# Requests per second per simulated client when no --rate is given: the in-lab client always
# sends at a steady rate (an open model); there is no back-to-back mode.
DEFAULT_RATE_PER_CLIENT = 15.0
SAMPLES_FILE = "samples-inlab.csv"
LOG_FILE = "client.log"


def client_container(lab: str) -> str | None:
    """The running container of the lab's client block, or None when load comes from outside."""
    from labctl import kinds

    for state in local_runtime().containers(lab):
        kind = kinds.REGISTRY.get(state.kind)
        if kind is not None and kind.sends_load and state.state == "running":
            return state.container
    return None


def effective_rate(users: int, rate: float | None) -> float:
    """Total requests per second the in-lab clients send."""
    return rate if rate else users * DEFAULT_RATE_PER_CLIENT


def client_argv(container: str, users: int, rate: float, duration_s: float, path: str) -> list[str]:
    """The client script run in its container with `users` stub clients at `rate` req/s in total."""
    return local_runtime().exec_command(container, [
        "python3", CLIENT_SCRIPT, "load", "--clients", str(users),
        "--rate", f"{rate:g}", "--duration", f"{duration_s:g}", "--path", path])


def start_clients(container: str, users: int, rate: float, duration_s: float, path: str,
                  run_dir: Path) -> subprocess.Popen[bytes]:
    """Start the in-lab clients; their samples stream into run_dir as they happen."""
    argv = client_argv(container, users, rate, duration_s, path)
    with open(run_dir / SAMPLES_FILE, "wb") as samples, open(run_dir / LOG_FILE, "wb") as log:
        return subprocess.Popen(argv, stdout=samples, stderr=log, cwd=run_dir)


def stop_clients(lab: str) -> None:
    """Stop the in-lab clients early: ending `docker exec` would leave them running inside."""
    container = client_container(lab)
    if container is None:
        return
    script = ("for p in /proc/[0-9]*; do [ \"${p#/proc/}\" != $$ ] && grep -q labclient.py \"$p/cmdline\" "
              "2>/dev/null && grep -q load \"$p/cmdline\" && kill \"${p#/proc/}\"; done; true")
    local_runtime().exec(container, ["sh", "-c", script])
