"""What a Redis Cluster says about itself, asked node by node through the published ports
(CLUSTER INFO, CLUSTER NODES), and the two things labctl does to it: `redis-cli --cluster
create` during `up`, and reading the load's keys back from every master afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from labctl.errors import LabctlError
from labctl.model.lab import Block, Lab
from labctl.redis.resp import SLOTS, Connection, RespError, ask

Progress = Callable[[str], None]
# Keys of the load's writes: KEY_PREFIX + the ledger id (labctl/loadgen/redis_user.py).
KEY_PREFIX = "labctl:writes:"
ASK_TIMEOUT_S = 0.5
SCAN_COUNT = 2000
CREATE_TIMEOUT_S = 120


class RedisClusterError(LabctlError):
    """The cluster could not be asked, formed or read back."""


@dataclass(frozen=True)
class Peer:
    """One line of CLUSTER NODES: a node as another node (or itself) sees it."""

    node_id: str
    port: int
    flags: tuple[str, ...]
    master_id: str
    link: str
    ranges: tuple[tuple[int, int], ...]

    @property
    def slots(self) -> int:
        return sum(end - start + 1 for start, end in self.ranges)

    def serves(self, slot: int) -> bool:
        return any(start <= slot <= end for start, end in self.ranges)

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return "fail" in self.flags

    @property
    def suspected(self) -> bool:
        return "fail?" in self.flags


@dataclass(frozen=True)
class NodeState:
    """One node as it answered (or not) on its published port."""

    name: str
    port: int
    reachable: bool
    state: str = ""
    slots_assigned: int = 0
    known_nodes: int = 0
    epoch: int = 0
    peers: list[Peer] = field(default_factory=list)
    error: str = ""

    @property
    def myself(self) -> Peer | None:
        return next((p for p in self.peers if "myself" in p.flags), None)


@dataclass(frozen=True)
class ClusterView:
    """Every node at one moment; `names` maps node ids to the lab's instance names."""

    at: float
    nodes: list[NodeState]
    names: dict[str, str]

    @property
    def reachable(self) -> list[NodeState]:
        return [n for n in self.nodes if n.reachable]

    @property
    def ok(self) -> bool:
        """Every node that answers says the cluster is ok with all 16384 slots served."""
        up = self.reachable
        return bool(up) and all(n.state == "ok" and n.slots_assigned == SLOTS for n in up)

    def newest(self) -> NodeState | None:
        """The answering node with the highest epoch: the most recent picture of who serves what."""
        return max(self.reachable, key=lambda n: n.epoch, default=None)

    def masters(self) -> dict[str, Peer]:
        """Masters serving slots, by name, as the newest view has them (failed ones left out)."""
        newest = self.newest()
        if newest is None:
            return {}
        return {self.names.get(p.node_id, p.node_id): p for p in newest.peers
                if p.is_master and p.slots and not p.failed}

    def name_of(self, node_id: str) -> str:
        return self.names.get(node_id, node_id[:8])


def node_ports(block: Block) -> list[tuple[str, int]]:
    """(node name, published port) of every node, in order; the node listens on it inside too."""
    return list(zip(block.instances(), block.host_ports("client"), strict=True))


def parse_nodes(text: str) -> list[Peer]:
    """CLUSTER NODES, one Peer per line (address `ip:port@bus[,hostname...]`)."""
    peers = []
    for line in text.strip().splitlines():
        fields = line.split()
        address = fields[1].split(",", 1)[0].split("@", 1)[0]
        # `[slot->-id]` / `[slot-<-id]` mark a slot being migrated, not one served.
        ranges = tuple(_slot_range(item) for item in fields[8:] if not item.startswith("["))
        peers.append(Peer(fields[0], int(address.rpartition(":")[2] or 0), tuple(fields[2].split(",")),
                          fields[3], fields[7], ranges))
    return peers


def _slot_range(item: str) -> tuple[int, int]:
    start, _, end = item.partition("-")
    return int(start), int(end or start)


def parse_info(text: str) -> dict[str, str]:
    """`key:value` lines of CLUSTER INFO or INFO as a dict."""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def node_state(name: str, port: int) -> NodeState:
    """What one node says about the cluster."""
    try:
        connection = Connection("127.0.0.1", port, ASK_TIMEOUT_S)
        try:
            info = parse_info(connection.command("CLUSTER", "INFO"))
            peers = parse_nodes(connection.command("CLUSTER", "NODES"))
        finally:
            connection.close()
    except (OSError, RespError) as exc:
        return NodeState(name, port, False, error=str(exc))
    return NodeState(name, port, True, state=info.get("cluster_state", ""),
                     slots_assigned=int(info.get("cluster_slots_assigned", 0)),
                     known_nodes=int(info.get("cluster_known_nodes", 0)),
                     epoch=int(info.get("cluster_current_epoch", 0)), peers=peers)


def cluster_view(block: Block) -> ClusterView:
    """Every node asked at once."""
    ports = node_ports(block)
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        nodes = list(pool.map(lambda item: node_state(*item), ports))
    by_port = {port: name for name, port in ports}
    names = {p.node_id: by_port[p.port] for n in nodes for p in n.peers if p.port in by_port}
    return ClusterView(time.time(), nodes, names)


def form_cluster(lab: Lab, block: Block, timeout: float, progress: Progress) -> ClusterView:
    """Create the cluster if no node is in one yet, then wait until it is ok."""
    view = cluster_view(block)
    if view.ok and all(n.known_nodes == block.node_count for n in view.nodes):
        return view
    if all(n.reachable and n.known_nodes <= 1 and n.slots_assigned == 0 for n in view.nodes):
        create_cluster(lab, block, progress)
    return wait_ok(lab, block, timeout, progress)


def create_cluster(lab: Lab, block: Block, progress: Progress) -> None:
    """`redis-cli --cluster create` over the nodes' lab-network addresses, run in node 1."""
    from labctl.runtime import local_runtime

    runtime = local_runtime()
    addresses = [f"{runtime.address(f'{lab.project}-{name}').cidr.split('/')[0]}:{port}"
                 for name, port in node_ports(block)]
    replicas = int(block.params.get("replicas", 1))
    progress(f"{block.name}: redis-cli --cluster create {' '.join(addresses)} --cluster-replicas {replicas}")
    result = runtime.exec(f"{lab.project}-{block.instances()[0]}",
                          ["redis-cli", "-p", str(node_ports(block)[0][1]), "--cluster", "create", *addresses,
                           "--cluster-replicas", str(replicas), "--cluster-yes"])
    if result.exit_code != 0:
        raise RedisClusterError(f"{block.name}: redis-cli --cluster create failed "
                                f"(exit {result.exit_code}): {result.output.strip()[-600:]}")


def wait_ok(lab: Lab, block: Block, timeout: float, progress: Progress) -> ClusterView:
    """Wait until every node says ok with all slots served and every master has its replicas."""
    deadline = time.monotonic() + min(timeout, CREATE_TIMEOUT_S)
    while True:
        view = cluster_view(block)
        missing = _missing(view, block)
        if not missing:
            return view
        if time.monotonic() > deadline:
            raise RedisClusterError(f"{block.name}: the cluster is not whole after {timeout:.0f}s ({missing}); "
                                    f"see 'labctl db status {lab.name}', or 'labctl down {lab.name}' and "
                                    f"'labctl up {lab.name}' to form it anew")
        progress(f"{block.name}: waiting for the cluster ({missing})")
        time.sleep(0.5)


def _missing(view: ClusterView, block: Block) -> str:
    if len(view.reachable) < block.node_count:
        return "not answering: " + ", ".join(n.name for n in view.nodes if not n.reachable)
    if not view.ok:
        return "state: " + ", ".join(f"{n.name} {n.state} {n.slots_assigned} slots" for n in view.nodes)
    replicas = int(block.params.get("replicas", 1))
    masters = view.masters()
    if len(masters) != int(block.params.get("masters", 3)):
        return f"{len(masters)} masters serve slots"
    newest = view.newest()
    peers = newest.peers if newest else []
    short = [name for name, m in masters.items()
             if sum(1 for p in peers if p.master_id == m.node_id and not p.failed) < replicas]
    if short:
        return f"without {replicas} replica(s): {', '.join(short)}"
    ports = dict(node_ports(block))
    syncing = [view.name_of(p.node_id) for p in peers if not p.is_master and view.name_of(p.node_id) in ports
               and replication_info(ports[view.name_of(p.node_id)]).get("master_link_status") != "up"]
    return f"replicas still syncing: {', '.join(syncing)}" if syncing else ""


def present_ids(block: Block, prefixes: list[str]) -> set[str]:
    """The ledger ids under these run prefixes held by the masters serving slots now."""
    view = cluster_view(block)
    ports = {name: port for name, port in node_ports(block)}
    found: set[str] = set()
    for name in view.masters():
        for prefix in prefixes:
            found.update(key.removeprefix(KEY_PREFIX) for key in scan(ports[name], KEY_PREFIX + prefix + "*"))
    return found


def scan(port: int, pattern: str) -> list[str]:
    """Every key of one node matching a pattern (SCAN, so the node keeps serving meanwhile)."""
    connection = Connection("127.0.0.1", port, 10)
    keys: list[str] = []
    try:
        cursor = "0"
        while True:
            cursor, page = connection.command("SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT)
            keys.extend(page)
            if cursor == "0":
                return keys
    except (OSError, RespError) as exc:
        raise RedisClusterError(f"reading the writes back from 127.0.0.1:{port}: {exc}") from exc
    finally:
        connection.close()


def replication_info(port: int) -> dict[str, str]:
    """INFO replication of one node ({} when it does not answer)."""
    try:
        return parse_info(str(ask("127.0.0.1", port, "INFO", "replication", timeout=ASK_TIMEOUT_S)))
    except (OSError, RespError):
        return {}


def status_rows(block: Block) -> list[dict[str, Any]]:
    """One row per node for `labctl db status`: role, slots, master, replica link, state."""
    view = cluster_view(block)
    newest = view.newest()
    seen = {view.name_of(p.node_id): p for p in (newest.peers if newest else [])}
    rows = []
    for node in view.nodes:
        peer = seen.get(node.name)
        info = replication_info(node.port) if node.reachable else {}
        rows.append({
            "node": node.name, "port": node.port, "answers": node.reachable,
            "role": ("master" if peer.is_master else "replica") if peer else "?",
            "slots": peer.slots if peer else 0,
            "replicates": view.name_of(peer.master_id) if peer and peer.master_id != "-" else "",
            "link": info.get("master_link_status", "") or f"{info.get('connected_slaves', '-')} replica(s)",
            "flags": ",".join(f for f in peer.flags if f not in ("myself", "master", "slave")) if peer else "",
            "cluster_state": node.state or "no answer",
        })
    return rows


def master_of_slot(view: ClusterView, slot: int) -> str | None:
    """The name of the master serving one slot, per the newest view."""
    return next((name for name, peer in view.masters().items() if peer.serves(slot)), None)


def status(lab: Lab, block: Block) -> dict[str, Any]:
    """`labctl db status`: each node's role, slots, master, replica link and cluster state."""
    rows = status_rows(block)
    whole = all(r["cluster_state"] == "ok" for r in rows)
    return {"lab": lab.name, "kind": "redis", "whole": whole,
            "title": f"{lab.name}: Redis Cluster {block.name}, state "
                     f"{'ok' if whole else 'not ok on every node'}",
            "columns": ["node", "port", "role", "slots", "replicates", "link", "flags", "cluster_state"],
            "nodes": rows}
