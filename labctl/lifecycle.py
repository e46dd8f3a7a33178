"""Bringing labs up and down, and reporting what is running: the core behind the CLI."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labctl import copies, images, paths
from labctl.errors import HealthTimeoutError, LabctlError, PortBusyError
from labctl.model.instance import lab_ref, reserved_offset, split_instance
from labctl.model.lab import Lab
from labctl.render import RenderedLab, render_lab
from labctl.running import write_snapshot
from labctl.runtime import inventory, local_runtime
from labctl.runtime.base import Removal
from labctl.runtime.dockerenv import ephemeral_port_range, port_holder, port_is_free

Progress = Callable[[str], None]
POLL_SECONDS = 0.25
UNHEALTHY_GRACE_S = 5.0  # a few health-check intervals (1 s in every lab)
_BEING_REPLACED = ("exited", "dead", "removing", "created")
# The longest stop_grace_period of any block template: a database flushing and leaving.
EXTRA_STOP_TIMEOUT_S = 10.0


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class UpResult:
    """A lab that is up: where its files are, its endpoints, and how long it took."""

    lab: Lab
    rendered: RenderedLab
    profile: str
    profile_reason: str
    endpoints: dict[str, str]
    seconds: float


# What `down` removed, and what it had to leave (with the reason).
DownResult = Removal


@dataclass(frozen=True)
class LabStatus:
    """One lab's containers and endpoints, as `status --json` prints them."""

    lab: str
    project: str
    services: list[inventory.ServiceState]
    endpoints: dict[str, str]
    port_offset: int = 0  # a copy's, added to each of the lab's own ports

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "lab": self.lab,
            "project": self.project,
            "state": overall_state(self.services),
            "services": [
                {"name": s.name, "block": s.block, "kind": s.kind, "container": s.container,
                 "state": s.state, "health": s.health}
                for s in self.services
            ],
            "endpoints": self.endpoints,
        }
        lab_name, copy = split_instance(self.lab)
        if copy:
            data.update(copy_of=lab_name, owner=copy, port_offset=self.port_offset)
        return data


def overall_state(services: list[inventory.ServiceState]) -> str:
    """up (every service healthy), degraded (one failed), starting, or down (no containers)."""
    if not services:
        return "down"
    outcomes = {s.outcome for s in services}
    if outcomes == {"healthy"}:
        return "up"
    return "degraded" if "failed" in outcomes else "starting"


def required_roles(lab: Lab) -> list[str]:
    """The image roles a lab needs."""
    return sorted(blocks_by_role(lab))


def blocks_by_role(lab: Lab) -> dict[str, list[str]]:
    """The lab's blocks on each image role: {"mysql": ["db"], "app": ["app"]}."""
    roles: dict[str, list[str]] = {}
    for b in lab.blocks.values():
        roles.setdefault(b.spec.image_role(b), []).append(b.name)
    return roles


def prepare_images(lab: Lab, requested: str | None, progress: Progress) -> tuple[str, str, dict[str, str]]:
    """Pick the image profile and make sure its images exist; returns (profile, reason, refs)."""
    roles = required_roles(lab)
    profile, reason = images.resolve_profile(requested, roles, blocks_by_role(lab))
    progress(f"images: {profile} profile ({reason})")
    images.ensure_images(profile, roles, on_event=lambda event: progress(f"images: {event}"))
    return profile, reason, {role: images.image_ref(role, profile) for role in roles}


def render(lab: Lab, profile: str | None = None, progress: Progress = _quiet) -> RenderedLab:
    """Render a lab into compose/<lab>/ with the image names of the chosen profile."""
    if profile:
        images.check_profile(profile)
    chosen = profile or "local"
    refs = {role: images.image_ref(role, chosen) for role in required_roles(lab)}
    return render_lab(lab, refs)


def check_ports(lab: Lab) -> None:
    """Fail before anything starts when a published port is taken by something else."""
    ours = {p for s in local_runtime().containers(lab.name) for p in _ports_of(s)}
    for name, (block, _base) in lab.endpoints().items():
        port = next((p for p in block.host_ports(name) if p not in ours and not _free_soon(p, lab.bind)), None)
        if port is None:
            continue
        holder = port_holder(port) or "another process"
        raise PortBusyError(
            f"port {port} ({block.name}.publish.{name}) on {lab.bind} is in use by {holder}; "
            f"stop it, or choose another port with --set {block.name}.publish.{name}=PORT"
            + _ephemeral_hint(port)
        )


def _ephemeral_hint(port: int) -> str:
    ephemeral = ephemeral_port_range()
    if ephemeral is None or port not in ephemeral:
        return ""
    return (
        f" below {ephemeral.start}: ports {ephemeral.start}-{ephemeral.stop - 1} are the kernel's local ports"
        " for outgoing connections (net.ipv4.ip_local_port_range), so any client on this machine can hold one"
    )


def _free_soon(port: int, bind: str, grace: float = 5.0) -> bool:
    # Docker's port proxy of a container removed a moment ago can hold the port for a few
    # seconds more: a lab taken down and brought up again must not trip over it.
    deadline = time.monotonic() + grace
    while not port_is_free(port, bind):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def _ports_of(state: inventory.ServiceState) -> list[int]:
    return [int(url.split(":")[2].split("/")[0]) for url in state.endpoints.values()]


def up(lab: Lab, *, profile: str | None = None, timeout: float = 180.0, progress: Progress = _quiet) -> UpResult:
    """Render and start a lab, then wait until every service is healthy."""
    started = time.monotonic()
    local_runtime().require()
    refuse_paused(lab.name)
    with copies.placement_lock():
        lab = copies.place(lab)
        check_ports(lab)
        chosen, reason, refs = prepare_images(lab, profile, progress)
        rendered = render_lab(lab, refs)
        write_snapshot(lab, refs)
    progress(f"rendered {rendered.compose_file}")
    running = {s.name for s in local_runtime().containers(lab.name) if s.state == "running"}
    try:
        _start_and_wait(lab, rendered, timeout, progress)
        apply_changes(lab, rendered, running, progress)
        for block in lab.blocks.values():
            block.spec.after_up(lab, block, progress, timeout)
    except KeyboardInterrupt:
        progress("interrupted: removing what was started")
        _remove_interrupted(lab.name)
        raise
    seconds = time.monotonic() - started
    return UpResult(lab, rendered, chosen, reason, lab.endpoint_urls(), seconds)


def refuse_paused(lab: str) -> None:
    """Compose cannot start a paused container; say how to unpause it instead of Docker's error."""
    paused = [s.name for s in local_runtime().containers(lab) if s.state == "paused"]
    if paused:
        raise LabctlError(f"{', '.join(paused)} of lab '{lab}' {'is' if len(paused) == 1 else 'are'} paused: "
                          f"'labctl heal {lab_ref(lab)}' unpauses what labctl paused, then run up again")


def _remove_interrupted(lab: str, settle: float = 1.0, timeout: float = 20.0) -> None:
    # Requests the killed `docker compose` had already sent still complete in the engine,
    # so a container can appear after the first sweep: sweep until the lab stays empty.
    deadline = time.monotonic() + timeout
    while True:
        down(lab)
        time.sleep(settle)
        if not local_runtime().has_objects(lab) or time.monotonic() > deadline:
            return


def apply_changes(lab: Lab, rendered: RenderedLab, running: set[str], progress: Progress) -> None:
    # Compose cannot see a changed bind-mounted config file, so a running load balancer
    # whose config changed is told to reload it (no restart, connections keep going).
    for name in sorted(rendered.changed_blocks()):
        block = lab.blocks.get(name)
        # A block of several nodes (a keepalived pair) is running when any of them is.
        if block is not None and running & {block.service_base, *block.instances()}:
            block.spec.reload(lab, block, progress)
    _remove_extra_instances(lab, progress)


def _remove_extra_instances(lab: Lab, progress: Progress) -> None:
    # After a scale-down: containers of this lab that the lab no longer has. They carry
    # this lab's labels, so they are labctl's own; the load balancer has already let go.
    # Stopped before removed, so a cluster member leaves its cluster instead of vanishing:
    # a Galera node killed while garbd joins broke the rest into non-Primary singletons.
    expected = {i for b in lab.blocks.values() for i in b.spec.services(b)}
    extra = [s for s in local_runtime().containers(lab.name) if s.name not in expected]
    for state in extra:
        progress(f"stopping and removing {state.name}")
        if state.state == "running":
            local_runtime().stop(state.container, EXTRA_STOP_TIMEOUT_S)
        local_runtime().remove_container(state.container)


def _start_and_wait(lab: Lab, rendered: RenderedLab, timeout: float, progress: Progress) -> None:
    expected = [i for b in lab.blocks.values() for i in b.spec.services(b)]
    process = local_runtime().start_project(lab.project, rendered.compose_file)
    deadline = time.monotonic() + timeout
    try:
        wait_healthy(lab.name, expected, process, deadline, progress)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_services_healthy(lab: str, services: list[str], progress: Progress, timeout: float = 120.0) -> None:
    """Wait until these services of a running lab are healthy."""
    wait_healthy(lab, services, None, time.monotonic() + timeout, progress)


def wait_healthy(
    lab: str, expected: list[str], process: subprocess.Popen[str] | None, deadline: float, progress: Progress
) -> None:
    """Poll until every expected service is healthy; fail fast on a failed one or a failed
    `compose up` (`process`, when one is still running)."""
    unhealthy_since: dict[str, float] = {}
    while True:
        states = {s.name: s for s in local_runtime().containers(lab)}
        healthy = [n for n in expected if n in states and states[n].outcome == "healthy"]
        progress(f"waiting for services: {len(healthy)}/{len(expected)} healthy")
        compose_done = process is None or process.poll() is not None
        if len(healthy) == len(expected) and compose_done:
            _raise_if_compose_failed(process, lab, expected, states)
            return
        failed = _failed(expected, states, unhealthy_since, replacing=not compose_done)
        compose_failed = process is not None and process.poll() not in (None, 0)
        if failed or compose_failed or time.monotonic() > deadline:
            _raise_not_healthy(lab, expected, states, process, timed_out=not (failed or compose_failed))
        time.sleep(POLL_SECONDS)


def _failed(expected: list[str], states: dict[str, inventory.ServiceState],
            unhealthy_since: dict[str, float], replacing: bool = False) -> list[str]:
    # One passing check turns "unhealthy" back into "healthy" (a container just unpaused, or
    # over a stall), so only an exited service, or one unhealthy for a while, has failed.
    # While `compose up` still runs, a stopped or removed container is one it is recreating
    # for a changed config (it fails on its own when a new one exits).
    now = time.monotonic()
    failed = []
    for name in expected:
        state = states.get(name)
        if state is not None and replacing and state.state in _BEING_REPLACED:
            continue
        if state is None or state.outcome != "failed":
            unhealthy_since.pop(name, None)
        elif state.health != "unhealthy" or now - unhealthy_since.setdefault(name, now) > UNHEALTHY_GRACE_S:
            failed.append(name)
    return failed


def _raise_if_compose_failed(
    process: subprocess.Popen[str] | None, lab: str, expected: list[str], states: dict[str, inventory.ServiceState]
) -> None:
    if process is not None and process.returncode != 0:
        _raise_not_healthy(lab, expected, states, process, timed_out=False)


def _raise_not_healthy(
    lab: str,
    expected: list[str],
    states: dict[str, inventory.ServiceState],
    process: subprocess.Popen[str] | None,
    timed_out: bool,
) -> None:
    bad = [n for n in expected if n not in states or states[n].outcome != "healthy"]
    lines = [
        ("timed out waiting for" if timed_out else "these services did not become healthy in")
        + f" lab '{lab}': {', '.join(bad) or 'none'}"
    ]
    if process is not None and process.poll() not in (None, 0) and process.stdout is not None:
        lines += ["docker compose said:", *("    " + x for x in process.stdout.read().strip().splitlines()[-10:])]
    for name in bad:
        if name in states:
            state = states[name]
            tail = local_runtime().logs_tail(state.container, 15)
            hint = " (137 is SIGKILL: out of memory, or killed)" if "(137)" in state.status_text else ""
            lines += [f"--- {name}: {state.status_text}{hint}; last log lines:", tail or "    (none)"]
    lines.append(f"Inspect with 'labctl logs {lab_ref(lab)}', remove with 'labctl down {lab_ref(lab)}'.")
    raise HealthTimeoutError("\n".join(lines), bad)


def down(lab: str | None) -> DownResult:
    """Remove everything labctl created for one lab (or for all labs), and nothing else."""
    local_runtime().require()
    return local_runtime().remove_lab(lab)


def status(lab: str | None) -> list[LabStatus]:
    """Status of one lab (even when down) or of every lab that has containers."""
    local_runtime().require()
    names = [lab] if lab else local_runtime().labs()
    return [_lab_status(name) for name in names]


def _lab_status(name: str) -> LabStatus:
    services = local_runtime().containers(name)
    endpoints: dict[str, str] = {}
    for state in services:
        endpoints.update(state.endpoints)
    return LabStatus(name, f"labctl-{name}", services, endpoints, reserved_offset(name))


def status_all() -> list[copies.InstanceRow]:
    """Every lab and copy that has containers: the lab it runs, its owner (the copy's name) and ports."""
    return [copies.instance_row(s.lab, overall_state(s.services), s.endpoints) for s in status(None)]


def logs_command(lab: str, service: str | None, tail: int, follow: bool) -> list[str]:
    """The command that shows a lab's logs (the CLI runs it attached to the terminal)."""
    local_runtime().require()
    compose_file = paths.compose_dir(lab) / "compose.yaml"
    known = {s.name for s in local_runtime().containers(lab)}
    if not known:
        raise LabctlError(f"lab '{lab}' has no containers; start it with 'labctl up {lab_ref(lab)}'")
    if service and service not in known:
        raise LabctlError(f"lab '{lab}' has no service '{service}' (services: {', '.join(sorted(known))})")
    return local_runtime().logs_command(f"labctl-{lab}", compose_file if compose_file.is_file() else None, service,
                                        tail, follow)


def rendered_path(lab: str) -> Path:
    """The compose.yaml of a lab, rendered or not."""
    return paths.compose_dir(lab) / "compose.yaml"
