"""An etcd cluster: 3 or 5 members bootstrapped statically over the lab network (Raft)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.durations import DRILL_DURATION, DURATION, duration_ms, parse_duration
from labctl.errors import UsageError
from labctl.kinds.base import BlockData, BlockKind, Expectation, FieldProblem, Progress, ledger_expectations, node_urls
from labctl.kinds.fragments import CPUS, MEMORY, node_publish

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState

# etcd refuses an election timeout under 5 heartbeats, and over 50 s.
MIN_HEARTBEATS_PER_ELECTION = 5
MAX_ELECTION_MS = 50000


class EtcdKind(BlockKind):
    name = "etcd"
    properties: ClassVar[dict[str, Any]] = {
        "members": {"enum": [3, 5]},
        "heartbeat": DURATION,
        "election_timeout": DURATION,
        # How the load reads each acknowledged write back from another member, if at all.
        "read_back": {"enum": ["off", "linearizable", "serializable"]},
        "cpus": CPUS,
        "memory": MEMORY,
        "publish": node_publish("client", "member"),
    }
    # labctl asks every member who leads through its published client port.
    required = ("publish",)
    # etcd's own defaults (--heartbeat-interval 100, --election-timeout 1000).
    defaults: ClassVar[dict[str, Any]] = {"members": 3, "heartbeat": "100ms", "election_timeout": "1s",
                                            "read_back": "off"}
    numbered = True
    port_per_node = True
    stores_data = True
    names_backends = False
    target_roles = ("leader", "followers")

    def named_volumes(self, block: Block) -> list[str]:
        # A member recreated with a fresh data dir would try to bootstrap a cluster that already
        # has it ("member has already been bootstrapped"); its volume keeps its identity.
        return [f"{member}-data" for member in block.instances()]

    def node_count(self, params: BlockData) -> int:
        return int(params.get("members", 3))

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        urls = node_urls(lab, block, "http", port, node)
        if node in (None, 0) and not _holds_locks_only(lab, block):
            # `http` is where `labctl load` and drills point Locust: member 1; the etcd user
            # finds the other members from there and fails over between them itself. A store
            # of locks is not what the load writes to: `http` is then the app's.
            urls = {"http": f"http://{lab.bind}:{port}", **urls}
        return urls

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        heartbeat = duration_ms(block.get("heartbeat", self.defaults["heartbeat"]))
        election = duration_ms(block.get("election_timeout", self.defaults["election_timeout"]))
        if election > MAX_ELECTION_MS:
            return [((name, "election_timeout"), "expected at most 50s (etcd's limit)")]
        if election < MIN_HEARTBEATS_PER_ELECTION * heartbeat:
            return [((name, "election_timeout"), f"expected at least 5 heartbeats ({5 * heartbeat}ms): etcd "
                     f"refuses a shorter election timeout")]
        return []

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.etcd.cluster import wait_for_leader

        found = wait_for_leader(lab, block, timeout, progress)
        progress(f"{block.name}: leader {found.leader}, term {found.term}, "
                 f"{len(found.healthy)}/{block.node_count} members healthy")

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        from labctl.etcd.cluster import cluster_view

        leader = cluster_view(lab, block).leader
        running = [s for s in members if s.state == "running"]
        if role == "leader":
            chosen = [s for s in running if s.name == leader]
        else:
            chosen = [s for s in running if s.name != leader] if leader else []
        if not chosen:
            raise UsageError(f"lab '{lab.name}' has no {block.name} {role} right now (no member reports a "
                             f"leader); see 'labctl status {lab.name}'")
        return sorted(chosen, key=lambda s: s.name)

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        first = f"{lab.project}-{block.instances()[0]}"
        return [f"docker exec {first} etcdctl endpoint status --cluster -w table"]

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        from labctl.etcd.drill_etcd import EtcdDrill

        if _holds_locks_only(lab, block):
            return
        EtcdDrill(lab, block, progress).subscribe(events)

    def load_environment(self, lab: Lab, block: Block) -> dict[str, str]:
        return {"LABCTL_ETCD_READ_BACK": str(block.params.get("read_back", "off"))}

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        from labctl.etcd.drill_etcd import writes_report
        from labctl.experiments import ledger

        if not any(run_dir.glob(ledger.LEDGER_GLOB)) or _holds_locks_only(lab, block):
            return {}
        progress("reading every write back from the cluster")
        return {"db": writes_report(lab, block, run_dir, [])}

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        from labctl.etcd.drill_etcd import report_rows

        return report_rows(report)

    def drill_expectations(self) -> dict[str, Expectation]:
        # Same names and meaning as the db kind's, so compare puts both in one table.
        return {
            **ledger_expectations(),
            "election_within": Expectation(
                DRILL_DURATION, lambda m: (m.get("election") or {}).get("election_s"),
                lambda e, o: o is not None and o <= parse_duration(str(e))),
            "max_minority_commits": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: (m.get("election") or {}).get("minority_commits"),
                lambda e, o: o is not None and o <= e),
        }


def _holds_locks_only(lab: Lab, block: Block) -> bool:
    # A failover manager's store (Patroni's leader lock: a block naming it as its `dcs`): the
    # load's writes go to the database beside it, whose kind reads them back; this block must
    # not claim them as its own.
    return any(other.params.get("dcs") == block.name for other in lab.blocks.values())


KIND = EtcdKind()
