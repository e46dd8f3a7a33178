"""`labctl doctor`: is this machine ready, and which faults does its kernel support?

Every probe runs for real but harmlessly: network faults are tried on the loopback
device of a private network namespace (a throwaway container's with no network, or
`unshare --net` on the host), never on the host's own interfaces. Whatever a probe
creates carries the label io.labctl.doctor=1 and is removed even when the probe fails.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from labctl.errors import LabctlError
from labctl.process import run
from labctl.runtime.dockerenv import compose_version, engine_errors, port_holder, port_is_free
from labctl.runtime.probes import engine_info, has_image, pause_and_unpause, remove_stale, run_to_end

NETTOOLS_IMAGE = "labctl/nettools:local"
PROBE_LABEL = {"io.labctl.doctor": "1"}
PROBE_TIMEOUT = 20
STALE_AFTER = 120
# Each network fault: the tool it needs, and a command that adds the fault on lo and removes it again.
NETWORK_PROBES = {
    "netem": ("tc", "tc qdisc add dev lo root netem delay 1ms && tc qdisc del dev lo root"),
    "tbf": ("tc", "tc qdisc add dev lo root tbf rate 1mbit burst 32kbit latency 400ms && tc qdisc del dev lo root"),
    "iptables": ("iptables", "iptables -A OUTPUT -m statistic --mode random --probability 0.1 "
                 "-m comment --comment labctl -j DROP && iptables -F OUTPUT"),
}
_HINTS = {"netem": "latency faults need netem; use the app's 'slow' fault instead"}
_NO_IMAGE = f"unknown: no {NETTOOLS_IMAGE} image to probe with (build it with 'labctl images build nettools')"
_CPU_SCRIPT = ("cat /sys/fs/cgroup/cpu.max 2>/dev/null || "
               "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")
_MEMORY_SCRIPT = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
_MEMORY_BYTES = 64 * 1024 * 1024

Probe = Callable[[], list["Check"]]


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report; status is "ok", "warn", "fail" or "unsupported"."""

    name: str
    status: str
    detail: str

    def __str__(self) -> str:
        return f"{self.status:<11} {self.name}: {self.detail}"


def run_checks(ports: Sequence[int] = ()) -> list[Check]:
    """Every check: the engine, Compose v2, each given port on 127.0.0.1, and (when the
    engine answers) which faults this kernel and engine support."""
    engine = _guard("docker engine", _engine_check)
    checks = [engine, _guard("compose v2", lambda: Check("compose v2", "ok", compose_version()))]
    checks += [_port_check(port) for port in ports]
    if engine.status == "ok":
        checks += fault_checks()
        checks.append(link_check(checks))
    return checks


def link_check(checks: list[Check]) -> Check:
    """How link blocks make their latency on this machine, given the netem probe's result."""
    netem = next((c.status for c in checks if c.name == "fault: netem"), "unknown")
    why = "this kernel has no netem" if netem == "unsupported" else f"netem: {netem}; the relay is used everywhere"
    return Check("wan link", "ok", f"link blocks (dr-link) delay TCP in a relay container per forwarded service "
                                   f"({why}); ping (ICMP) is not delayed")


def _guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except LabctlError as exc:
        return Check(name, "fail", str(exc))


def _engine_check() -> Check:
    info = engine_info()
    detail = (f"server {info.get('ServerVersion')}, storage {info.get('Driver')}, "
              f"cgroup v{info.get('CgroupVersion', '?')}")
    return Check("docker engine", "ok", detail)


def _port_check(port: int) -> Check:
    if port_is_free(port):
        return Check(f"port {port}", "ok", "free on 127.0.0.1")
    return Check(f"port {port}", "warn", f"in use on 127.0.0.1 by {port_holder(port) or 'an unknown process'}")


def fault_checks() -> list[Check]:
    """One check per fault kind ("fault: netem", "fault: tbf", "fault: iptables",
    "fault: pause", "fault: cpu limit", "fault: memory limit"), each probed for real."""
    return list(_probe_faults())


def supported_faults() -> dict[str, bool]:
    """Fault kind -> whether a probe showed it works here (for the chaos commands);
    a fault that could not be probed counts as unsupported."""
    return {c.name.removeprefix("fault: "): c.status == "ok" for c in _probe_faults()}


@functools.cache
def _probe_faults() -> tuple[Check, ...]:
    image = NETTOOLS_IMAGE if has_image(NETTOOLS_IMAGE) else None
    _sweep_stale()
    probes: list[tuple[list[str], Probe]] = [
        (list(NETWORK_PROBES), lambda: _network_probes(image)),
        (["pause"], lambda: [_pause_probe(image)]),
        (["cpu limit"], lambda: [_cpu_probe(image)]),
        (["memory limit"], lambda: [_memory_probe(image)]),
    ]
    # Each probe mostly waits on the engine, so running them side by side costs one probe's time.
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        found = pool.map(lambda job: _guard_probe(*job), probes)
        return tuple(check for checks in found for check in checks)


def _guard_probe(names: list[str], probe: Probe) -> list[Check]:
    failures: tuple[type[Exception], ...] = (LabctlError, OSError, *engine_errors())
    try:
        return probe()
    except failures as exc:
        reason = " ".join(str(exc).split())[:300]
        return [Check(f"fault: {name}", "warn", f"unknown: the probe failed: {reason}") for name in names]


def _sweep_stale() -> None:
    """Remove probe containers a killed earlier run left behind (not a concurrent run's)."""
    remove_stale(PROBE_LABEL, STALE_AFTER)


def _run_probe(image: str, command: list[str], **options: Any) -> tuple[int, str]:
    """Run a labelled throwaway container to its end: exit code and output. Always removed."""
    return run_to_end(image, command, PROBE_LABEL, PROBE_TIMEOUT, **options)


def probe_script() -> str:
    """The shell script that tries each network fault and prints "NAME ok" or "NAME why"."""
    lines = []
    for name, (tool, command) in NETWORK_PROBES.items():
        lines.append(f'if ! command -v {tool} >/dev/null 2>&1; then echo "{name} unknown: {tool} is not installed"; '
                     f'elif ({command}) 2>/tmp/probe.err; then echo "{name} ok"; '
                     f'else echo "{name} $(tr "\\n" " " </tmp/probe.err | head -c 200)"; fi')
    return "\n".join(lines)


def _network_probes(image: str | None) -> list[Check]:
    if image is not None:
        _, output = _run_probe(image, ["sh", "-c", probe_script()], cap_add=["NET_ADMIN"])
        return parse_probe_output(output, "in a throwaway container's network namespace")
    if os.geteuid() == 0 and shutil.which("unshare"):
        result = run(["unshare", "--net", "sh", "-c", probe_script()], check=False, timeout=PROBE_TIMEOUT)
        return parse_probe_output(result.stdout, "in a private network namespace on the host, via unshare --net")
    return [Check(f"fault: {name}", "warn", f"{_NO_IMAGE}; or run doctor as root") for name in NETWORK_PROBES]


def parse_probe_output(text: str, where: str) -> list[Check]:
    """Checks from `probe_script()` output; a probe that printed nothing is "warn"."""
    said: dict[str, str] = {}
    for line in text.splitlines():
        name, _, rest = line.strip().partition(" ")
        said[name] = rest
    return [_network_check(name, said.get(name), where) for name in NETWORK_PROBES]


def _network_check(name: str, said: str | None, where: str) -> Check:
    if said is None:
        return Check(f"fault: {name}", "warn", "unknown: the probe printed nothing")
    if said == "ok":
        return Check(f"fault: {name}", "ok", f"works ({where})")
    if said.startswith("unknown:"):
        return Check(f"fault: {name}", "warn", said)
    hint = f" ({_HINTS[name]})" if name in _HINTS else ""
    return Check(f"fault: {name}", "unsupported", f"{said.strip() or 'failed'}{hint}")


def _pause_probe(image: str | None) -> Check:
    if image is None:
        return Check("fault: pause", "warn", _NO_IMAGE)
    try:
        pause_and_unpause(image, PROBE_LABEL)
    except engine_errors() as exc:
        return _refused("pause", exc)
    return Check("fault: pause", "ok", "docker pause/unpause works (cgroup freezer)")


def _refused(name: str, exc: Exception) -> Check:
    """An engine that refused (an API error) means unsupported; a timeout or lost
    connection says nothing about the kernel, so it goes on to be reported as unknown."""
    explanation = getattr(exc, "explanation", None)
    if not explanation:
        raise exc
    return Check(f"fault: {name}", "unsupported", " ".join(str(explanation).split())[:300])


def _cpu_probe(image: str | None) -> Check:
    if image is None:
        return _from_info("cpu limit", "CpuCfsQuota")
    try:
        _, output = _run_probe(image, ["sh", "-c", _CPU_SCRIPT], nano_cpus=500_000_000)
    except engine_errors() as exc:
        return _refused("cpu limit", exc)
    quota, period = parse_cpu_quota(output)
    if quota is None or period is None or abs(quota / period - 0.5) > 0.01:
        return Check("fault: cpu limit", "unsupported", f"--cpus 0.5 was not applied (cgroup says {output.strip()!r})")
    return Check("fault: cpu limit", "ok", f"--cpus 0.5 enforced (CFS quota {quota}/{period} us)")


def parse_cpu_quota(output: str) -> tuple[int | None, int | None]:
    """(quota, period) from cgroup v2 `cpu.max` or v1 `cfs_quota_us` + `cfs_period_us`;
    None for no quota ("max" or -1)."""
    words = output.split()
    if len(words) != 2 or not re.fullmatch(r"\d+", words[1]):
        return None, None
    quota = int(words[0]) if re.fullmatch(r"\d+", words[0]) else None
    return quota, int(words[1])


def _memory_probe(image: str | None) -> Check:
    if image is None:
        return _from_info("memory limit", "MemoryLimit")
    try:
        _, output = _run_probe(image, ["sh", "-c", _MEMORY_SCRIPT], mem_limit="64m")
    except engine_errors() as exc:
        return _refused("memory limit", exc)
    if output.strip() != str(_MEMORY_BYTES):
        return Check("fault: memory limit", "unsupported",
                     f"--memory 64m was not applied (cgroup says {output.strip()!r})")
    return Check("fault: memory limit", "ok", f"--memory 64m enforced (cgroup limit {_MEMORY_BYTES} bytes)")


def _from_info(name: str, flag: str) -> Check:
    ok = bool(engine_info().get(flag))
    detail = f"docker info says {flag}={str(ok).lower()} (not run: no {NETTOOLS_IMAGE} image)"
    return Check(f"fault: {name}", "ok" if ok else "unsupported", detail)
