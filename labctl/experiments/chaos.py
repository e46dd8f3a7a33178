"""`labctl chaos` and `labctl heal`: faults that are recorded, time-stamped and reversible.

Active faults are kept in <home>/state/<lab>/faults.json, so `labctl heal` can revert
them even after the labctl that injected them was killed. Every event is also appended
to runs/<lab>/chaos.jsonl. Network faults run from a helper container that joins the
target's network namespace, so lab images need no tools of their own.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labctl import images, kinds, paths
from labctl.doctor import supported_faults
from labctl.durations import parse_duration
from labctl.errors import ContainerGoneError, EngineError, LabctlError, UsageError
from labctl.running import RunningLab, attach
from labctl.runtime import local_runtime

RULE_COMMENT = "labctl"
HOG_PID = "/tmp/labctl-cpu-hog.pid"
Progress = Callable[[str], None]


@dataclass
class Fault:
    """One injected fault and how to revert it."""

    id: str
    at: float
    fault: str
    target: str
    container: str
    params: dict[str, Any] = field(default_factory=dict)
    revert: list[list[str]] = field(default_factory=list)  # helper commands that undo it
    reverted_at: float | None = None


def state_file(lab: str) -> Path:
    return paths.home_dir() / "state" / lab / "faults.json"


def active_faults(lab: str) -> list[Fault]:
    """Faults injected and not reverted yet."""
    path = state_file(lab)
    if not path.is_file():
        return []
    return [Fault(**item) for item in json.loads(path.read_text(encoding="utf-8"))]


def faults_in_effect(lab: str) -> list[Fault]:
    """Active faults whose container is still the one they were injected into: a container
    removed or created again since (`down` and `up`, a rebuilt db node) carries none."""
    created = {s.container: s.created for s in local_runtime().containers(lab)}
    return [f for f in active_faults(lab) if f.container in created and created[f.container] <= f.at]


def _save_active(lab: str, faults: list[Fault]) -> None:
    path = state_file(lab)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(f) for f in faults], indent=2) + "\n", encoding="utf-8")


def _journal(lab: str, event: str, fault: Fault) -> None:
    folder = paths.runs_dir(lab)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "chaos.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"time": time.time(), "event": event, **asdict(fault)}) + "\n")


def helper_image() -> str:
    """The nettools image that runs tc and iptables in a target's network namespace."""
    images.ensure_images("local", ["nettools"])
    return images.image_ref("nettools", "local")


def in_netns(container: str, command: list[str]) -> str:
    """Run a command in a container's network namespace from the helper image."""
    return local_runtime().exec_in_netns(container, command, helper_image())


# The faults that read each parameter, and what its value must be.
_PARAMETERS: dict[str, tuple[tuple[str, ...], str, Callable[[Any], bool]]] = {
    "percent": (("loss", "fail"), "a percentage from 0 to 100",
                lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 100),
    "rate": (("bandwidth",), "a rate like 1mbit, 500kbit or 2mbps",
             lambda v: isinstance(v, str) and re.fullmatch(r"[0-9]+(\.[0-9]+)?[kmg]?(bit|bps)", v) is not None),
    "ms": (("latency", "slow"), "milliseconds from 0 to 600000",
           lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 600_000),
    "from": (("partition",), "a target like app.2", lambda v: isinstance(v, str) and bool(v.strip())),
}


def parameter_problems(fault: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(parameter, sentence) for each parameter the fault does not read or whose value is wrong."""
    found = []
    for key, value in params.items():
        takers, wanted, valid = _PARAMETERS[key]
        # A kind's own fault reads what it wants (replica-delay: ms); only the value is checked.
        if fault not in takers and (fault in _CORE_INJECTORS or fault not in INJECTORS):
            found.append((key, f"{fault} takes no {key} ({' and '.join(takers)} {'do' if takers[1:] else 'does'})"))
        elif not valid(value):
            found.append((key, f"expected {wanted}, got {value!r}"))
    return found


def hold_seconds(duration: str | None) -> float | None:
    """`--duration`: how long to keep a fault before reverting it (None: until healed)."""
    if duration is None:
        return None
    seconds = parse_duration(duration)
    if seconds <= 0:
        raise UsageError(f"--duration expects a time > 0, got {duration!r} (leave it out to keep the fault)")
    return seconds


def inject(running: RunningLab, fault: str, target: str, params: dict[str, Any]) -> list[Fault]:
    """Inject a fault into every container the target names; returns what was recorded.
    The fault and its parameters are checked before the engine is asked anything."""
    if fault not in FAULTS:
        raise UsageError(f"unknown fault '{fault}' (faults: {', '.join(FAULTS)})")
    wrong = parameter_problems(fault, params)
    if wrong:
        raise UsageError("; ".join(f"--{key}: {text}" for key, text in wrong))
    local_runtime().require()
    _check_supported(fault)
    lab = running.name
    states = running.resolve(target)
    recorded = []
    for state in states:
        item = Fault(uuid.uuid4().hex[:8], time.time(), fault, state.name, state.container, params)
        item.revert = INJECTORS[fault](state.container, params, lab)
        _journal(lab, "inject", item)
        recorded.append(item)
    persistent = [f for f in recorded if f.revert]
    _save_active(lab, active_faults(lab) + persistent)
    return recorded


def _check_supported(fault: str) -> None:
    if fault == "latency" and not supported_faults().get("netem", False):
        raise LabctlError("this kernel has no netem qdisc ('tc ... netem' fails: Specified qdisc kind is "
                          "unknown), so 'latency' cannot be injected here; use 'slow --ms N' (the app's own "
                          "delay, works on any kernel) instead. See 'labctl doctor'.")


def revert(lab: str, fault: Fault) -> None:
    """Undo one fault; a target that is gone counts as reverted."""
    for command in fault.revert:
        # A target restarted since (or still down) has a fresh network namespace with nothing to undo.
        network = (EngineError,) if command[0] == "netns" else ()
        with contextlib.suppress(ContainerGoneError, *network):
            _run_revert(fault.container, command)
    fault.reverted_at = time.time()
    _journal(lab, "revert", fault)


def _run_revert(container: str, command: list[str]) -> None:
    action, *rest = command
    runtime = local_runtime()
    if action == "exec-in":  # a command in another container of the lab (the dns server), in the background
        runtime.exec(rest[0], rest[1:], detach=True)
        return
    if action == "start":
        runtime.start(container)
    elif action == "unpause":
        if runtime.state(container) == "paused":
            runtime.unpause(container)
    elif action == "exec":
        runtime.exec(container, rest)
    elif action == "netns":
        in_netns(container, rest)


def heal(lab: str) -> list[Fault]:
    """Revert every active fault of a lab (newest first), then sweep leftover rules and qdiscs."""
    local_runtime().require()
    faults = active_faults(lab)
    for fault in reversed(faults):
        revert(lab, fault)
    _save_active(lab, [])
    _sweep_network(lab)
    return faults


@dataclass(frozen=True)
class Healed:
    """What `labctl heal` did: the faults it reverted, and the lab's containers it started
    because they were down for another reason (a `docker kill` by hand, a crash)."""

    faults: list[Fault]
    started: list[str]


def heal_lab(lab: str) -> Healed:
    """Revert every active fault, then start the lab's own containers that are still exited."""
    faults = heal(lab)
    return Healed(faults, start_exited(lab))


def start_exited(lab: str) -> list[str]:
    """Start the containers of a lab that have exited; returns their instance names."""
    exited = [s for s in local_runtime().containers(lab) if s.state == "exited"]
    for state in exited:
        local_runtime().start(state.container)
    return [s.name for s in exited]


def _sweep_network(lab: str) -> None:
    # Belt and braces: rules labctl tagged and qdiscs it adds, even if the record was lost.
    for state in local_runtime().containers(lab):
        if state.state != "running":
            continue
        script = ("iptables-save | grep -- '--comment " + RULE_COMMENT + "' | sed 's/^-A /-D /' | "
                  "while read -r rule; do eval iptables $rule; done; "
                  "tc qdisc show dev eth0 | grep -qE 'qdisc (tbf|netem)' && tc qdisc del dev eth0 root; true")
        in_netns(state.container, ["bash", "-c", script])


def network_leftovers(container: str) -> str:
    """labctl's iptables rules and qdiscs still in a container's namespace (empty when clean)."""
    script = ("iptables-save | grep -- '--comment " + RULE_COMMENT + "'; "
              "tc qdisc show dev eth0 | grep -E 'qdisc (tbf|netem)'; true")
    return in_netns(container, ["bash", "-c", script]).strip()


def _kill(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    local_runtime().kill(name)
    return [["start"]]


def _stop(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    local_runtime().stop(name, timeout=2)
    return [["start"]]


def _start(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    local_runtime().start(name)
    _forget(lab, name, ("kill", "stop"))
    return []


def _restart(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    local_runtime().restart(name, timeout=2)
    return []


def _pause(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    local_runtime().pause(name)
    return [["unpause"]]


def _unpause(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    _run_revert(name, ["unpause"])
    _forget(lab, name, ("pause",))
    return []


def _forget(lab: str, container: str, kinds: tuple[str, ...]) -> None:
    # A manual start/unpause is itself the revert of an earlier kill/stop/pause.
    remaining = [f for f in active_faults(lab) if not (f.container == container and f.fault in kinds)]
    _save_active(lab, remaining)


def _iptables(rules: list[list[str]], name: str) -> list[list[str]]:
    # One helper container for all the rules: each `docker run` costs most of a second, and a
    # drill's next step (the kill after a partition) must not wait for them one by one.
    script = " && ".join(shlex.join(["iptables", "-I", *rule, "-m", "comment", "--comment", RULE_COMMENT])
                         for rule in rules)
    in_netns(name, ["sh", "-c", script])
    return [["netns", "iptables", "-D", *rule, "-m", "comment", "--comment", RULE_COMMENT] for rule in rules]


def _partition(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    runtime = local_runtime()
    if params.get("from"):
        other = attach(lab).resolve(str(params["from"]))
        peers = [runtime.address(s.container).cidr.split("/")[0] for s in other]
    else:
        address = runtime.address(name)
        gateway = address.gateway
        peers = [address.cidr]
    rules = [[chain, flag, peer, "-j", "DROP"] for peer in peers
             for chain, flag in (("INPUT", "-s"), ("OUTPUT", "-d"))]
    if not params.get("from"):
        # The host reaches published ports through the gateway: keep that path open. Rules are
        # inserted at the top (-I), so the ACCEPTs go in last to be matched first.
        rules += [["INPUT", "-s", gateway, "-j", "ACCEPT"], ["OUTPUT", "-d", gateway, "-j", "ACCEPT"]]
    return _iptables(rules, name)


def _loss(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    probability = f"{float(params.get('percent', 10)) / 100:.4f}"
    return _iptables([["INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random", "--probability",
                       probability, "-j", "DROP"]], name)


def _qdisc(name: str, qdisc: list[str]) -> list[list[str]]:
    in_netns(name, ["tc", "qdisc", "replace", "dev", "eth0", "root", *qdisc])
    return [["netns", "tc", "qdisc", "del", "dev", "eth0", "root"]]


def _bandwidth(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    return _qdisc(name, ["tbf", "rate", str(params.get("rate", "1mbit")), "burst", "32kbit", "latency", "400ms"])


def _latency(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    return _qdisc(name, ["netem", "delay", f"{int(params.get('ms', 100))}ms"])


def _app_switch(name: str, path: str) -> None:
    result = local_runtime().exec(name, ["python3", "-c", _switch_script(path)])
    if result.exit_code != 0:
        raise LabctlError(f"{name} did not take the switch {path}: is it an app container? "
                          f"{result.output.strip()[-200:]}")


def _slow(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    _app_switch(name, f"/_chaos/slow?ms={int(params.get('ms', 200))}")
    return [["exec", "python3", "-c", _switch_script("/_chaos/slow?ms=0")]]


def _fail(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    _app_switch(name, f"/_chaos/fail?percent={float(params.get('percent', 100))}")
    return [["exec", "python3", "-c", _switch_script("/_chaos/fail?percent=0")]]


def _switch_script(path: str) -> str:
    return ("import urllib.request; urllib.request.urlopen(urllib.request.Request("
            f"'http://127.0.0.1:8000{path}', method='POST'), timeout=5).read()")


def _cpu_hog(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    local_runtime().exec(name, ["bash", "-c", f"echo $$ > {HOG_PID}; exec bash -c 'while :; do :; done'"],
                         detach=True)
    return [["exec", "bash", "-c", f"kill $(cat {HOG_PID}) && rm -f {HOG_PID}"]]


_CORE_INJECTORS: dict[str, Callable[[str, dict[str, Any], str], list[list[str]]]] = {
    "kill": _kill, "stop": _stop, "start": _start, "restart": _restart, "pause": _pause, "unpause": _unpause,
    "partition": _partition, "loss": _loss, "bandwidth": _bandwidth, "latency": _latency, "slow": _slow,
    "fail": _fail, "cpu-hog": _cpu_hog,
}
INJECTORS = {
    **_CORE_INJECTORS,
    # Faults only some kinds of block can take (a replica's delay, a DNS record withdrawn).
    **{name: injector for kind in kinds.REGISTRY.values() for name, injector in kind.faults().items()},
}


FAULTS = tuple(INJECTORS)


def hold_then_revert(lab: str, faults: list[Fault], seconds: float, progress: Progress) -> None:
    """Keep faults for `seconds`, then revert them; Ctrl-C reverts too."""
    ids = {f.id for f in faults}
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            progress(f"fault active, {deadline - time.monotonic():.0f}s left (Ctrl-C reverts now)")
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    finally:
        for fault in faults:
            revert(lab, fault)
        _save_active(lab, [f for f in active_faults(lab) if f.id not in ids])
