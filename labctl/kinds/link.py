"""A WAN link between two sites: site A is the lab network, site B a second network, and the
only way across is a relay per forwarded service that adds the link's round trip.

This kernel has no netem, so the delay is a userspace relay (images/app/wanrelay.py) rather
than a qdisc: every chunk is held half the round trip each way, in order, paced to the rate.
A service in the other site is reached by its usual name, which there resolves to its relay.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.durations import DURATION, duration_ms
from labctl.kinds.base import BlockData, BlockKind, FieldProblem, Progress

if TYPE_CHECKING:
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState

SITE_A, SITE_B = "lab", "site-b"
SITE_NAMES = {SITE_A: "site-a", SITE_B: "site-b"}
# The relay's own health answer: checking a forwarded port would open a connection to the
# target every second (MySQL blocks a host after enough aborted handshakes).
HEALTH_PORT = 9901
SERVICE_NAME = r"^[a-z][a-z0-9-]*$"


class LinkKind(BlockKind):
    name = "link"
    properties: ClassVar[dict[str, Any]] = {
        # Services of the lab's other blocks that run in site B; every other one is in site A.
        "site_b": {"type": "array", "minItems": 1, "uniqueItems": True,
                   "items": {"type": "string", "pattern": SERVICE_NAME}},
        # Service -> the ports of it the other site reaches across the link.
        "forward": {"type": "object", "minProperties": 1,
                    "propertyNames": {"pattern": SERVICE_NAME},
                    "additionalProperties": {"type": "array", "minItems": 1, "uniqueItems": True,
                                             "items": {"type": "integer", "minimum": 1, "maximum": 65535}}},
        # The round trip the link adds (as a ping across it shows); each direction gets half.
        "rtt": DURATION,
        "jitter": DURATION,
        # Mbit/s each way; 0: only the host's own limit.
        "rate_mbit": {"type": "number", "minimum": 0},
    }
    required = ("site_b", "forward")
    defaults: ClassVar[dict[str, Any]] = {"rtt": "0ms", "jitter": "0ms", "rate_mbit": 0}
    names_backends = False
    # The relay that carries the database primary's traffic across (`link.to-primary`): pausing
    # it cuts the primary off from the other site, whichever node is primary now.
    target_roles = ("to-primary",)

    def instances(self, block: Block) -> list[str]:
        return [f"{block.service_base}-{service}" for service in block.params["forward"]]

    def node_count(self, params: BlockData) -> int:
        return len(params.get("forward", {})) or 1

    def image_role(self, block: Block) -> str:
        # The app image has Python, which is all the relay needs.
        return "app"

    def summary(self, block: Block) -> str:
        return f"{block.name} (link: {block.params['rtt']} round trip, relayed)"

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        known = _other_services(name, blocks)
        found: list[FieldProblem] = []
        for index, service in enumerate(block["site_b"]):
            if service not in known:
                found.append(((name, "site_b", index), _unknown(service, known)))
        for service in block["forward"]:
            if service not in known:
                found.append(((name, "forward", service), _unknown(service, known)))
        if set(known) <= set(block["site_b"]):
            found.append(((name, "site_b"), "expected at least one service to stay in site A"))
        if duration_ms(block.get("jitter", "0ms")) > duration_ms(block.get("rtt", "0ms")):
            found.append(((name, "jitter"), "expected at most the round trip (rtt)"))
        return found

    def networks(self, lab: Lab, block: Block) -> list[str]:
        return [SITE_B]

    def placement(self, lab: Lab, block: Block) -> dict[str, tuple[str, list[str]]]:
        site_b = set(block.params["site_b"])
        placed: dict[str, tuple[str, list[str]]] = {}
        for other in lab.blocks.values():
            if other is block:
                continue
            for service in other.spec.services(other):
                network = SITE_B if service in site_b else SITE_A
                placed[service] = (network, [f"{service}.{SITE_NAMES[network]}"])
        return placed

    def relays(self, lab: Lab, block: Block) -> list[dict[str, Any]]:
        """One relay per forwarded service: its name, target, ports, and the networks it joins
        (with the target's own name as an alias on the far side's network)."""
        site_b = set(block.params["site_b"])
        found = []
        for relay, (service, ports) in zip(self.instances(block), block.params["forward"].items(), strict=True):
            home = SITE_B if service in site_b else SITE_A
            far = SITE_A if home == SITE_B else SITE_B
            found.append({"name": relay, "service": service, "ports": ports, "health_port": HEALTH_PORT,
                          "target": f"{service}.{SITE_NAMES[home]}", "home": home, "far": far})
        return found

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        from labctl.db import nodes as db
        from labctl.errors import UsageError

        primary = db.current_primary(db.states(lab))
        relay = f"{block.service_base}-{primary.node.name}" if primary else None
        chosen = [s for s in members if s.name == relay]
        if not chosen:
            raise UsageError(f"lab '{lab.name}' has no {block.name} relay to its database primary right now "
                             f"(primary: {primary.node.name if primary else 'none'}); see "
                             f"'labctl db status {lab.name}'")
        return chosen

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        return {"link": describe(block)}

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        # Cutting the link is pausing its relays: nothing crosses until `heal`.
        return [f"labctl chaos {lab.name} pause {block.name}"]


def describe(block: Block) -> dict[str, Any]:
    """What a report says about the link: how it is made and what it adds."""
    params = block.params
    return {"block": block.name, "method": "relay", "rtt_ms": duration_ms(params["rtt"]),
            "jitter_ms": duration_ms(params["jitter"]), "rate_mbit": params["rate_mbit"],
            "site_b": list(params["site_b"])}


def _other_services(link: str, blocks: dict[str, BlockData]) -> list[str]:
    from labctl import kinds
    from labctl.model.lab import Block

    services: list[str] = []
    for name, raw in blocks.items():
        if name == link or raw.get("kind") not in kinds.REGISTRY:
            continue
        block = Block(name, raw["kind"], raw)
        try:
            services.extend(block.spec.services(block))
        except (KeyError, TypeError, ValueError):
            continue  # a block with problems of its own: they are reported for it
    return services


def _unknown(service: str, known: list[str]) -> str:
    return f"expected a service of this lab ({', '.join(known) or 'none'}), got {service!r}"


KIND = LinkKind()
