"""Two or more HAProxy nodes sharing one floating address with keepalived (VRRP): no single
load balancer. The node holding the address balances; when it dies, the next one takes it."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.durations import DRILL_DURATION, DURATION, duration_ms, parse_duration
from labctl.errors import UsageError
from labctl.kinds.base import BlockData, ConfigTemplate, Expectation, FieldProblem, Progress, blocks_of, node_urls
from labctl.kinds.fragments import publish
from labctl.kinds.haproxy import HaproxyKind

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState

# VRRPv3 (RFC 5798) counts the advertisement interval in centiseconds in 12 bits.
MIN_ADVERT_MS = 10
MAX_ADVERT_MS = 40950
# Without priorities in the lab file: node 1 highest, each next one PRIORITY_STEP lower.
TOP_PRIORITY = 150
PRIORITY_STEP = 10

_IPV4 = {"type": "string", "pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$",
         "description": "an IPv4 address like 10.213.140.100"}


class KeepalivedKind(HaproxyKind):
    name = "keepalived"
    properties: ClassVar[dict[str, Any]] = {
        **HaproxyKind.properties,
        "publish": publish("http", "stats"),
        "nodes": {"type": "integer", "minimum": 2, "maximum": 4},
        "priorities": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 254},
                       "description": "a list of VRRP priorities from 1 to 254, one per node"},
        "advert_interval": DURATION,
        "router_id": {"type": "integer", "minimum": 1, "maximum": 255},
        "preempt": {"type": "boolean", "description": "true: a node with a higher priority takes the address back"},
        "subnet": {"type": "string", "pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/(1[6-9]|2[0-4])$",
                   "description": "an IPv4 network from /16 to /24 like 10.213.140.0/24"},
        "address": _IPV4,
    }
    defaults: ClassVar[dict[str, Any]] = {
        **HaproxyKind.defaults,
        "nodes": 2, "advert_interval": "1s", "router_id": 51, "preempt": False,
        "subnet": "10.213.140.0/24", "address": "10.213.140.100",
    }
    numbered = True
    port_per_node = True
    target_roles = ("active", "standby")
    backend_words = "an app block"

    def node_count(self, params: BlockData) -> int:
        return int(params.get("nodes", 2))

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        # Each node's own HAProxy; the clients use neither, but the floating address.
        suffix, label = ("/stats", " stats") if endpoint == "stats" else ("", "")
        urls = {f"{name}{label}": url + suffix for name, url in node_urls(lab, block, "http", port, node).items()}
        if endpoint == "http" and node in (None, 0):
            urls = {"http": f"http://{lab.bind}:{port}", **urls}
        return urls

    def backend_blocks(self, blocks: dict[str, BlockData]) -> list[str]:
        return blocks_of(blocks, "app")

    def lab_subnet(self, block: Block) -> str | None:
        return str(block.params["subnet"])

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        shared = {"advert_int": advert_seconds(block.params),
                  "prefix": ipaddress.ip_network(str(block.params["subnet"])).prefixlen}
        nodes = [("keepalived/keepalived.conf.j2", f"keepalived-{number}.conf",
                  {**shared, "instance": instance, "priority": priority})
                 for number, (instance, priority) in enumerate(zip(block.instances(), priorities(block.params),
                                                                   strict=True), start=1)]
        return [("haproxy/haproxy.cfg.j2", "haproxy.cfg", {}), *nodes]

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        return [*super().reference_problems(name, block, blocks), *_priority_problems(name, block),
                *_advert_problems(name, block), *_address_problems(name, block, blocks)]

    def reload(self, lab: Lab, block: Block, progress: Progress) -> None:
        from labctl.runtime import local_runtime

        progress(f"reloading {', '.join(block.instances())} for their new configs")
        for instance in block.instances():
            # The node's script passes HUP on to keepalived and USR2 to HAProxy's master.
            local_runtime().kill(f"{lab.project}-{instance}", signal="SIGHUP")

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.vrrp.address import wait_for_holder

        view = wait_for_holder(lab, block, timeout, progress)
        progress(f"{block.name}: {block.params['address']} on {view.holder} "
                 f"(priority {view.priority_of(view.holder)})")

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        from labctl.vrrp.address import address_view

        holder = address_view(lab, block).holder
        running = [s for s in members if s.state == "running"]
        chosen = [s for s in running if (s.name == holder) == (role == "active")] if holder else []
        if not chosen:
            raise UsageError(f"lab '{lab.name}' has no {block.name} {role} node right now (no node holds "
                             f"{block.params['address']}); see 'labctl db status {lab.name}'")
        return sorted(chosen, key=lambda s: s.name)

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        return [f"labctl db status {lab.name}   # which node holds {block.params['address']}"]

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        from labctl.vrrp.drill_vrrp import VrrpDrill

        VrrpDrill(lab, block, progress).subscribe(events)

    def db_status(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        from labctl.vrrp.address import status_table

        return status_table(lab, block)

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        from labctl.vrrp.drill_vrrp import report_rows

        return report_rows(report)

    def drill_expectations(self) -> dict[str, Expectation]:
        return {
            "takeover_within": Expectation(
                DRILL_DURATION, lambda m: (m.get("takeover") or {}).get("takeover_s"),
                lambda e, o: o is not None and o <= parse_duration(str(e))),
            "client_takeover_within": Expectation(
                DRILL_DURATION, lambda m: (m.get("takeover") or {}).get("client_takeover_s"),
                lambda e, o: o is not None and o <= parse_duration(str(e))),
        }


def priorities(params: BlockData) -> list[int]:
    """Each node's VRRP priority: the lab's, or 150, 140, ... from node 1 on."""
    given = params.get("priorities")
    if given is not None:
        return [int(p) for p in given]
    return [TOP_PRIORITY - PRIORITY_STEP * i for i in range(int(params.get("nodes", 2)))]


def advert_seconds(params: BlockData) -> str:
    """The advertisement interval as keepalived's advert_int takes it (seconds, two decimals)."""
    return f"{duration_ms(str(params['advert_interval'])) / 1000:g}"


def _priority_problems(name: str, block: BlockData) -> list[FieldProblem]:
    given, nodes = block.get("priorities"), int(block.get("nodes", 2))
    if given is None:
        return []
    if len(given) != nodes:
        return [((name, "priorities"), f"expected {nodes} priorities, one per node, got {len(given)}")]
    if len(set(given)) != len(given):
        # Equal priorities are settled by the higher address: not what a lab file should leave to chance.
        return [((name, "priorities"), f"expected different priorities, got {given}")]
    return []


def _advert_problems(name: str, block: BlockData) -> list[FieldProblem]:
    text = str(block.get("advert_interval", KIND.defaults["advert_interval"]))
    ms = duration_ms(text)
    if ms < MIN_ADVERT_MS or ms > MAX_ADVERT_MS or ms % 10:
        return [((name, "advert_interval"), f"expected a multiple of 10ms from 10ms to 40.95s (VRRPv3 counts "
                 f"centiseconds), got {text!r}")]
    return []


def _address_problems(name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
    others = [other for other, data in blocks.items() if other != name and data["kind"] in ("dns", KIND.name)]
    if others:
        return [((name, "subnet"), f"the lab network has one subnet and {others[0]} already sets it")]
    subnet = str(block.get("subnet", KIND.defaults["subnet"]))
    try:
        network = ipaddress.IPv4Network(subnet)
    except ValueError as exc:
        return [((name, "subnet"), f"expected a network address like 10.213.140.0/24, got {subnet!r} ({exc})")]
    return _floating_problems(name, str(block.get("address", KIND.defaults["address"])), network)


def _floating_problems(name: str, text: str, network: ipaddress.IPv4Network) -> list[FieldProblem]:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return [((name, "address"), f"expected an IPv4 address like 10.213.140.100, got {text!r}")]
    # Docker hands out the upper half (the lab network's ip_range) and .1 is its gateway.
    lower = next(iter(network.subnets(prefixlen_diff=1)))
    if address not in lower or address in (network[0], network[1]):
        return [((name, "address"), f"expected an address in {lower} other than {network[0]} and {network[1]} "
                 f"(Docker gives containers the upper half of {network}), got {text!r}")]
    return []


KIND = KeepalivedKind()
