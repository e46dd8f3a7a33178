"""DNS round robin in a lab: fixed addresses on the lab network, the records a dns block
serves, and the checks that tie dns and client blocks to the blocks they name."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labctl.model.lab import Block, Lab

FieldProblem = tuple[tuple[str | int, ...], str]
# Host numbers inside the dns block's subnet (.1 is Docker's gateway).
DNS_HOST = 2
CLIENT_HOST = 3
FIRST_RECORD_HOST = 11
DNS_PORT = 53


def dns_block(lab: Lab) -> Block | None:
    """The lab's dns block, if it has one (a lab has at most one)."""
    return next((b for b in lab.blocks.values() if b.kind == "dns"), None)


def fqdn(lab: Lab, block: Block) -> str:
    """The name a dns block answers for: `name` (default: the app block's name) in its zone."""
    label = block.params.get("name") or str(block.params["records"]).replace("_", "-")
    return f"{label}.{block.params['zone']}"


def fixed_addresses(lab: Lab) -> dict[str, str]:
    """Service name -> IPv4 address for every container that needs a fixed one (none without dns)."""
    block = dns_block(lab)
    if block is None:
        return {}
    network = ipaddress.ip_network(str(block.params["subnet"]))
    addresses = {block.service_base: str(network[DNS_HOST])}
    for other in lab.blocks.values():
        if other.kind == "client":
            addresses[other.service_base] = str(network[CLIENT_HOST + _client_index(lab, other)])
    records = lab.blocks[str(block.params["records"])]
    for number, instance in enumerate(records.instances()):
        addresses[instance] = str(network[FIRST_RECORD_HOST + number])
    return addresses


def _client_index(lab: Lab, block: Block) -> int:
    clients = [b.name for b in lab.blocks.values() if b.kind == "client"]
    return clients.index(block.name)


def records(lab: Lab, block: Block) -> list[tuple[str, str]]:
    """(instance, address) of every A record the dns block serves, one per app replica."""
    addresses = fixed_addresses(lab)
    return [(i, addresses[i]) for i in lab.blocks[str(block.params["records"])].instances()]


def dns_problems(blocks: dict[str, dict[str, Any]]) -> list[FieldProblem]:
    """Reference problems of dns and client blocks: what they name, and the subnet."""
    found: list[FieldProblem] = []
    dns_names = [n for n, b in blocks.items() if b["kind"] == "dns"]
    apps = [n for n, b in blocks.items() if b["kind"] == "app"]
    for name in dns_names[1:]:
        found.append(((name,), f"a lab has at most one dns block (already: {dns_names[0]})"))
    for name in dns_names[:1]:
        found.extend(_records_problems(name, blocks[name], blocks, apps))
    for name, block in blocks.items():
        if block["kind"] == "client":
            found.extend(_reference(name, block, "dns", dns_names, "a dns block"))
    return found


def _reference(name: str, block: dict[str, Any], key: str, known: list[str], what: str) -> list[FieldProblem]:
    target = block.get(key)
    if target is None:
        return [((name,), f"missing required key '{key}'")]
    if target not in known:
        return [((name, key), f"expected the name of {what} ({', '.join(known) or 'none'}), got {target!r}")]
    return []


def _records_problems(name: str, block: dict[str, Any], blocks: dict[str, dict[str, Any]],
                      apps: list[str]) -> list[FieldProblem]:
    # The schema allows /16 to /24, so the fixed addresses (.2, .3, .11 + 32 replicas at most)
    # always fit below the upper half that Docker hands out; only host bits can be wrong.
    found = _reference(name, block, "records", apps, "an app block")
    subnet = str(block.get("subnet", "10.213.130.0/24"))
    try:
        ipaddress.ip_network(subnet)
    except ValueError as exc:
        found.append(((name, "subnet"), f"expected a network address like 10.213.130.0/24, got {subnet!r} ({exc})"))
    return found


def network_pool(lab: Lab) -> dict[str, str]:
    """The lab network's subnet and the upper half Docker may hand out to other containers,
    so a dynamic address never takes one of the fixed ones (empty without dns)."""
    block = dns_block(lab)
    if block is None:
        return {}
    network = ipaddress.ip_network(str(block.params["subnet"]))
    return {"subnet": str(network), "ip_range": str(list(network.subnets(prefixlen_diff=1))[1])}
