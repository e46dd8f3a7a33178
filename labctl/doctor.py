"""`labctl doctor`: is this machine ready, and which faults does its kernel support?

Every probe runs for real but harmlessly: network faults are tried on the loopback
device of a throwaway container with no network, never on the host's interfaces.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from labctl import images
from labctl.dockerenv import compose_version, docker_client, port_holder, port_is_free
from labctl.errors import LabctlError

PROBE_LABEL = {"io.labctl.doctor": "1"}
# Each network fault's probe command, run on lo inside a container with --network none.
NETWORK_PROBES = {
    "netem": "tc qdisc add dev lo root netem delay 1ms",
    "tbf": "tc qdisc add dev lo root tbf rate 1mbit burst 32kbit latency 400ms",
    "iptables": "iptables -A OUTPUT -m statistic --mode random --probability 0.1 -j DROP",
}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: str  # ok | warn | fail | unsupported
    detail: str


def run_checks(ports: Sequence[int] = ()) -> list[Check]:
    """Every check: engine, Compose v2, the given ports, and the faults this kernel supports."""
    engine = _guard("docker engine", _engine_check)
    checks = [engine, _guard("compose v2", lambda: Check("compose v2", "ok", compose_version()))]
    checks += [_port_check(port) for port in ports]
    if engine.status == "ok":
        checks += fault_checks()
    return checks


def _guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except LabctlError as exc:
        return Check(name, "fail", str(exc))


def _engine_check() -> Check:
    info = docker_client().info()
    detail = (f"server {info.get('ServerVersion')}, storage {info.get('Driver')}, "
              f"cgroup v{info.get('CgroupVersion', '?')}")
    return Check("docker engine", "ok", detail)


def _port_check(port: int) -> Check:
    if port_is_free(port):
        return Check(f"port {port}", "ok", "free on 127.0.0.1")
    return Check(f"port {port}", "warn", f"in use by {port_holder(port) or 'another process'}")


def fault_checks() -> list[Check]:
    """Probe each fault kind; netem, tbf and iptables in a throwaway container, pause for real."""
    supported = supported_faults_detail()
    return [Check(f"fault: {name}", "ok" if ok else "unsupported", detail)
            for name, (ok, detail) in supported.items()]


def supported_faults() -> dict[str, bool]:
    """Fault kind -> whether this kernel and engine support it (for the chaos commands)."""
    return {name: ok for name, (ok, _) in supported_faults_detail().items()}


@functools.cache
def supported_faults_detail() -> dict[str, tuple[bool, str]]:
    """Fault kind -> (supported, what the probe saw)."""
    results = _network_probes()
    results["pause"] = _pause_probe()
    results.update(_limit_probes())
    return results


def _probe_image() -> str | None:
    for profile in ("local", "upstream"):
        ref = images.image_ref("nettools", profile)
        if images.image_present(ref):
            return ref
    return None


def _network_probes() -> dict[str, tuple[bool, str]]:
    image = _probe_image()
    if image is None:
        reason = "unknown: no nettools image yet (run 'labctl images build nettools')"
        return {name: (False, reason) for name in NETWORK_PROBES}
    script = "; ".join(f'{cmd} 2>/tmp/e && echo "{name} ok" || echo "{name} $(head -c 200 /tmp/e)"'
                       for name, cmd in NETWORK_PROBES.items())
    raw = docker_client().containers.run(
        image, ["bash", "-c", script], network_mode="none", cap_add=["NET_ADMIN"],
        labels=PROBE_LABEL, remove=True, stdout=True, stderr=True,
    )
    return _parse_probe_output(bytes(raw).decode("utf-8", "replace"))


def _parse_probe_output(text: str) -> dict[str, tuple[bool, str]]:
    results: dict[str, tuple[bool, str]] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name in NETWORK_PROBES:
            ok = rest.strip() == "ok"
            results[name] = (ok, "works" if ok else rest.strip().replace("\n", " "))
    return results


def _pause_probe() -> tuple[bool, str]:
    import docker.errors

    image = _probe_image()
    if image is None:
        return False, "unknown: no nettools image yet (run 'labctl images build nettools')"
    container = docker_client().containers.run(image, ["sleep", "30"], detach=True, labels=PROBE_LABEL,
                                               network_mode="none")
    try:
        container.pause()
        container.unpause()
        return True, "docker pause/unpause works (cgroup freezer)"
    except docker.errors.APIError as exc:
        return False, str(exc.explanation)
    finally:
        container.remove(force=True)


def _limit_probes() -> dict[str, tuple[bool, str]]:
    info = docker_client().info()
    cpu = bool(info.get("CpuCfsQuota"))
    memory = bool(info.get("MemoryLimit"))
    return {
        "cpu limit": (cpu, "--cpus works (CFS quota)" if cpu else "no CFS quota support"),
        "memory limit": (memory, "--memory works" if memory else "no memory cgroup"),
    }
