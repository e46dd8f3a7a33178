"""DNS round robin in a lab: fixed addresses on the lab network, the records a dns block
serves, and the checks that tie dns and client blocks to the blocks they name."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.durations import DURATION
from labctl.errors import LabctlError
from labctl.kinds.base import BlockData, BlockKind, FieldProblem, Injector, Progress, blocks_of, reference

if TYPE_CHECKING:
    from labctl.model.lab import Block, Lab

# Host numbers inside the dns block's subnet (.1 is Docker's gateway).
DNS_HOST = 2
CLIENT_HOST = 3
FIRST_RECORD_HOST = 11
DNS_PORT = 53


def dns_block(lab: Lab) -> Block | None:
    """The lab's dns block, if it has one (a lab has at most one)."""
    return next(iter(lab.blocks_of(DnsKind.name)), None)


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
    for index, client in enumerate(lab.blocks_of(ClientKind.name)):
        addresses[client.service_base] = str(network[CLIENT_HOST + index])
    records = lab.blocks[str(block.params["records"])]
    for number, instance in enumerate(records.instances()):
        addresses[instance] = str(network[FIRST_RECORD_HOST + number])
    return addresses


def records(lab: Lab, block: Block) -> list[tuple[str, str]]:
    """(instance, address) of every A record the dns block serves, one per app replica."""
    addresses = fixed_addresses(lab)
    return [(i, addresses[i]) for i in lab.blocks[str(block.params["records"])].instances()]


def _records_problems(name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
    # The schema allows /16 to /24, so the fixed addresses (.2, .3, .11 + 32 replicas at most)
    # always fit below the upper half that Docker hands out; only host bits can be wrong.
    found = reference(name, block, "records", blocks_of(blocks, "app"), "an app block")
    subnet = str(block.get("subnet", "10.213.130.0/24"))
    try:
        ipaddress.ip_network(subnet)
    except ValueError as exc:
        found.append(((name, "subnet"), f"expected a network address like 10.213.130.0/24, got {subnet!r} ({exc})"))
    return found


def network_pool(lab: Lab) -> dict[str, str]:
    """The lab network's subnet and the upper half Docker may hand out to other containers,
    so a dynamic address never takes one of the fixed ones (empty when no block needs fixed
    addresses: a dns block's records, a keepalived block's floating address)."""
    subnet = next((s for b in lab.blocks.values() if (s := b.spec.lab_subnet(b)) is not None), None)
    if subnet is None:
        return {}
    network = ipaddress.ip_network(subnet)
    return {"subnet": str(network), "ip_range": str(list(network.subnets(prefixlen_diff=1))[1])}


_LABEL = {"type": "string", "pattern": r"^[a-z][a-z0-9-]{0,62}$", "description": "a DNS label like app"}


class DnsKind(BlockKind):
    """BIND serving one A record per replica of an app block, with a TTL."""

    name = "dns"
    properties: ClassVar[dict[str, Any]] = {
        "records": {"type": "string", "description": "the name of an app block"},
        "name": _LABEL,
        "zone": {
            "type": "string",
            "pattern": r"^([a-z][a-z0-9-]{0,62}\.)+[a-z]{2,63}$",
            "description": "a domain like lab.test",
        },
        "ttl": {"type": "integer", "minimum": 0, "maximum": 86400},
        "subnet": {
            "type": "string",
            "pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/(1[6-9]|2[0-4])$",
            "description": "an IPv4 network from /16 to /24 like 10.213.130.0/24",
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"zone": "lab.test", "ttl": 5, "subnet": "10.213.130.0/24"}
    config_files = ("named.conf", "db.zone")
    serves_names = True

    def lab_subnet(self, block: Block) -> str | None:
        return str(block.params["subnet"])

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        first = blocks_of(blocks, self.name)[0]
        if name != first:
            return [((name,), f"a lab has at most one dns block (already: {first})")]
        return _records_problems(name, block, blocks)

    def faults(self) -> dict[str, Injector]:
        return {"withdraw": _withdraw}

    def reload(self, lab: Lab, block: Block, progress: Progress) -> None:
        from labctl.runtime import local_runtime

        progress(f"reloading {block.service_base} for its new records")
        container = f"{lab.project}-{block.service_base}"
        reload = "cp /etc/labctl-dns/db.zone /var/lib/bind/db.zone && kill -HUP 1"
        result = local_runtime().exec(container, ["sh", "-c", reload])
        if result.exit_code != 0:
            raise LabctlError(f"DNS reload failed in {container}: {result.output.strip()}")


def _withdraw(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    # The operator's (or a monitor's) move: take the replica's A record out of the lab's DNS
    # server. Clients that cached it keep using it until their TTL runs out.
    from labctl.running import attach
    from labctl.runtime import local_runtime

    running = attach(lab)
    dns_blocks = {b.name for b in running.lab.blocks_of(DnsKind.name)}
    servers = [s.container for s in running.states() if s.block in dns_blocks and s.state == "running"]
    if not servers:
        raise LabctlError(f"lab '{lab}' has no running dns block to withdraw {name} from")
    instance = local_runtime().labels(name).get("io.labctl.instance", name)
    marker = f"; {instance}$"
    for server in servers:
        result = local_runtime().exec(server, ["sh", "-c", f"grep -q '{marker}' {_ZONE} && "
                                               f"sed -i '/{marker}/d' {_ZONE} && kill -HUP 1"])
        if result.exit_code != 0:
            raise LabctlError(f"{server} has no A record for {instance} to withdraw")
    # The record comes back once the replica answers again (or after 60 s): handing out the
    # address of a server that is still starting would fail requests all over again.
    restore = (f"line=$(grep '{marker}' /etc/labctl-dns/db.zone); "
               f"python3 /opt/labctl/labclient.py wait $(echo \"$line\" | awk '{{print $4}}') --timeout 60; "
               f"grep -q '{marker}' {_ZONE} || echo \"$line\" >> {_ZONE}; kill -HUP 1")
    return [["exec-in", server, "sh", "-c", restore] for server in servers]


_ZONE = "/var/lib/bind/db.zone"


class ClientKind(BlockKind):
    """An in-lab client that resolves names through the lab's dns block, or sends to a keepalived
    block's floating address; load is sent from it."""

    name = "client"
    properties: ClassVar[dict[str, Any]] = {
        "dns": {"type": "string", "description": "the name of a dns block"},
        "floating_ip_of": {"type": "string", "description": "the name of a keepalived block"},
        "connect_timeout": DURATION,
        "read_timeout": DURATION,
    }
    defaults: ClassVar[dict[str, Any]] = {"connect_timeout": "500ms", "read_timeout": "2s"}
    sends_load = True

    def image_role(self, block: Block) -> str:
        return DnsKind.name  # the client ships in the dns image

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        if "floating_ip_of" not in block:
            return reference(name, block, "dns", blocks_of(blocks, DnsKind.name), "a dns block")
        if "dns" in block:
            return [((name, "floating_ip_of"), "a client resolves a name (dns) or sends to a floating address "
                     "(floating_ip_of), not both")]
        return reference(name, block, "floating_ip_of", blocks_of(blocks, "keepalived"), "a keepalived block")


KIND = DnsKind()
CLIENT = ClientKind()
