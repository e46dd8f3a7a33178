"""Copies of a lab on one host (`labctl up LAB --as NAME`): where a copy's ports go, and the
list of every copy for `labctl status --all`.

A copy publishes the lab's ports moved up by one offset, a multiple of 100 (alice +100, bob
+200: easy to read off a port). The offset is the lowest one whose ports no shipped lab
publishes (a copy must never keep a plain lab from starting), no other instance rendered here
was placed on (their snapshots) and no container of labctl publishes (of any LABCTL_HOME),
nothing listens on, and that all stay below the kernel's ephemeral range (32768), where any
outgoing connection may hold a port. It is kept in the copy's snapshot, so a copy gets the
same ports each time it comes up.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass

from labctl import paths
from labctl.errors import LabctlError
from labctl.kinds import dns
from labctl.model.instance import split_instance, with_port_offset
from labctl.model.lab import Lab, list_lab_names, load_lab
from labctl.runtime import local_runtime
from labctl.runtime.dockerenv import ephemeral_port_range, port_is_free

FIRST_EPHEMERAL_PORT = 32768  # Linux's default net.ipv4.ip_local_port_range starts here
OFFSET_STEP = 100


def published_ports(lab: Lab) -> set[int]:
    """Every host port a lab (or a copy) publishes, one per node for a block of nodes."""
    return {port for name, (block, _) in lab.endpoints().items() for port in block.host_ports(name)}


def port_limit() -> int:
    """The first port a copy may not use: the start of the ephemeral range (32768 by default)."""
    ephemeral = ephemeral_port_range()
    return min(FIRST_EPHEMERAL_PORT, ephemeral.start if ephemeral else FIRST_EPHEMERAL_PORT)


def candidate_offsets(ports: set[int], limit: int) -> list[int]:
    """Offsets, in steps of OFFSET_STEP, that keep every port below `limit`."""
    if not ports:
        return []
    return list(range(OFFSET_STEP, limit - max(ports), OFFSET_STEP))


@contextlib.contextmanager
def placement_lock() -> Iterator[None]:
    """Held from choosing a copy's offset until its snapshot records it: two `up --as` at once
    must not pick the same ports."""
    lock_file = paths.home_dir() / ".copies.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def place(lab: Lab) -> Lab:
    """A copy at the offset it was placed at before, else at the lowest free one (see module)."""
    if lab.copy and dns.network_pool(lab):
        raise LabctlError(f"lab '{lab.lab_name}' pins its network to a fixed subnet, so copies of it "
                          "cannot run side by side; run it without --as")
    if not lab.copy or lab.port_offset or not lab.endpoints():
        return lab
    ports = published_ports(lab)
    taken = ports_in_use_by_labs(exclude=lab.name)
    for offset in candidate_offsets(ports, port_limit()):
        shifted = {port + offset for port in ports}
        if not shifted & taken and all(port_is_free(port, lab.bind) for port in shifted):
            return with_port_offset(lab, offset)
    raise LabctlError(f"no room for another copy of '{lab.lab_name}' below port {port_limit()}: its ports "
                      f"{min(ports)}-{max(ports)} collide with other labs at every offset; "
                      "take a copy down ('labctl status --all' lists them)")


def ports_in_use_by_labs(exclude: str) -> set[int]:
    """Ports of every shipped lab, of every instance rendered here, and of labctl's containers."""
    taken = {port for name in list_lab_names() for port in _shipped_ports(name)}
    taken |= {port for name in _rendered_instances() if name != exclude for port in _rendered_ports(name)}
    states = local_runtime().containers(None)
    taken |= {int(url.rsplit(":", 1)[1].split("/")[0]) for s in states if s.name != exclude
              for url in s.endpoints.values()}
    return taken


def _shipped_ports(name: str) -> set[int]:
    try:
        return published_ports(load_lab(name))
    except LabctlError:  # a broken lab file publishes nothing anyone can start
        return set()


def _rendered_instances() -> list[str]:
    root = paths.home_dir() / "compose"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if paths.snapshot_file(p.name).is_file())


def _rendered_ports(name: str) -> set[int]:
    from labctl.running import attach

    try:
        return published_ports(attach(name).lab)
    except (LabctlError, KeyError, TypeError):
        return set()


@dataclass(frozen=True)
class InstanceRow:
    """One row of `labctl status --all`: an instance, the lab it runs, its owner and ports."""

    instance: str
    lab: str
    owner: str
    state: str
    endpoints: dict[str, str]

    def to_json(self) -> dict[str, object]:
        return {"instance": self.instance, "lab": self.lab, "owner": self.owner, "state": self.state,
                "endpoints": self.endpoints}


def instance_row(instance: str, state: str, endpoints: dict[str, str]) -> InstanceRow:
    """The row of one running instance."""
    lab, copy = split_instance(instance)
    return InstanceRow(instance, lab, copy, state, endpoints)
