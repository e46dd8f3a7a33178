"""Who holds a keepalived block's floating address, asked inside each node (`ip addr`), and
each node's VRRP state as keepalived logged it ("Entering MASTER STATE"), timed by the engine."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from labctl.errors import LabctlError
from labctl.kinds.keepalived import priorities
from labctl.model.lab import Block, Lab

Progress = Callable[[str], None]
# keepalived's own line for each transition, e.g. "(lb) Entering MASTER STATE".
_ENTERING = re.compile(r"\) Entering ([A-Z]+) STATE")


class VrrpError(LabctlError):
    """The floating address is not where a lab needs it (no node holds it, or several do)."""


@dataclass(frozen=True)
class NodeState:
    """One node as it answered (or not): does it hold the address, and its VRRP state."""

    name: str
    priority: int
    running: bool
    holds: bool = False
    state: str = "unknown"


@dataclass(frozen=True)
class AddressView:
    """Every node at one moment."""

    at: float
    address: str
    nodes: list[NodeState]

    @property
    def holders(self) -> list[str]:
        return [n.name for n in self.nodes if n.holds]

    @property
    def holder(self) -> str | None:
        """The one node holding the address; None when none does, or more than one."""
        return self.holders[0] if len(self.holders) == 1 else None

    def priority_of(self, name: str | None) -> int | None:
        return next((n.priority for n in self.nodes if n.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "holders": self.holders}


def container(lab: Lab, instance: str) -> str:
    return f"{lab.project}-{instance}"


def node_state(lab: Lab, block: Block, instance: str, priority: int) -> NodeState:
    """Ask one node for its addresses (`docker exec`) and its last VRRP state (its log)."""
    from labctl.runtime import local_runtime

    try:
        result = local_runtime().exec(container(lab, instance), ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
    except LabctlError:
        return NodeState(instance, priority, running=False, state="down")
    if result.exit_code != 0:
        return NodeState(instance, priority, running=False, state="down")
    states = transitions(lab, instance)
    return NodeState(instance, priority, running=True, holds=f" {block.params['address']}/" in result.output,
                     state=states[-1][1] if states else "unknown")


def address_view(lab: Lab, block: Block) -> AddressView:
    """Every node asked at once."""
    pairs = list(zip(block.instances(), priorities(block.params), strict=True))
    with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
        nodes = list(pool.map(lambda pair: node_state(lab, block, *pair), pairs))
    return AddressView(time.time(), str(block.params["address"]), nodes)


def wait_for_holder(lab: Lab, block: Block, timeout: float, progress: Progress) -> AddressView:
    """Wait until exactly one node holds the floating address (the first election takes about
    three advertisement intervals)."""
    deadline = time.monotonic() + timeout
    while True:
        view = address_view(lab, block)
        if view.holder is not None:
            return view
        if time.monotonic() > deadline:
            raise VrrpError(f"{block.name}: {view.address} is held by {', '.join(view.holders) or 'no node'} "
                            f"after {timeout:.0f}s (expected exactly one); see 'labctl logs {lab.name}'")
        progress(f"{block.name}: waiting for a node to take {view.address}")
        time.sleep(0.25)


def transitions(lab: Lab, instance: str) -> list[tuple[float, str]]:
    """(time, state) of every VRRP transition in a node's recent log, timed by the engine as
    keepalived wrote it (a notify script forked per transition can run late and out of order)."""
    from labctl.runtime import local_runtime

    try:
        lines = local_runtime().timestamped_logs(container(lab, instance))
    except LabctlError:
        return []
    return [(at, match.group(1)) for at, text in lines if (match := _ENTERING.search(text))]


def status_table(lab: Lab, block: Block) -> dict[str, Any]:
    """What `labctl db status` shows: each node, whether it holds the address, its VRRP state."""
    view = address_view(lab, block)
    rows = [{"node": n.name, "priority": n.priority, "holds_address": "yes" if n.holds else "no",
             "vrrp_state": n.state, "running": "yes" if n.running else "no"} for n in view.nodes]
    return {"lab": lab.name, "kind": "keepalived",
            "title": f"{lab.name}: floating address {view.address} of {block.name} on "
                     f"{view.holder or ', '.join(view.holders) or 'no node'} (advert_interval "
                     f"{block.params['advert_interval']}, preempt {str(block.params['preempt']).lower()})",
            "holder": view.holder, "address": view.address,
            "columns": ["node", "priority", "holds_address", "vrrp_state", "running"],
            "headings": {"holds_address": "holds address", "vrrp_state": "VRRP state"}, "nodes": rows}
