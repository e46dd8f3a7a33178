"""A Redis Cluster: masters with a replica each, formed by `redis-cli --cluster create` in `up`."""

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

# Redis's own floor for cluster-node-timeout is 1 ms, but under 1 s a busy 2-core machine
# fails over healthy masters that only missed a ping.
MIN_NODE_TIMEOUT_MS = 1000

RESHARD_STEP: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "properties": {
        "slots": {"type": "integer", "minimum": 1, "maximum": 16384},
        "from": {"type": "string", "pattern": "^[a-z0-9_-]+$"},
        "to": {"type": "string", "pattern": "^[a-z0-9_-]+$"}}}


class RedisKind(BlockKind):
    name = "redis"
    properties: ClassVar[dict[str, Any]] = {
        "masters": {"type": "integer", "minimum": 3, "maximum": 5},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 2,
                     "description": "replicas per master"},
        "node_timeout": DURATION,
        # The load's SET is acknowledged only once WAIT says this many replicas have it.
        "wait_replicas": {"type": "integer", "minimum": 0, "maximum": 2},
        "cpus": CPUS,
        "memory": MEMORY,
        "publish": node_publish("client", "node"),
    }
    # Node N listens on its published port inside its container too (see the template).
    required = ("publish",)
    # Redis's own default cluster-node-timeout is 15000 ms.
    defaults: ClassVar[dict[str, Any]] = {"masters": 3, "replicas": 1, "node_timeout": "15s", "wait_replicas": 0}
    numbered = True
    port_per_node = True
    stores_data = True
    names_backends = False
    target_roles = ("master", "masters", "replicas")

    def node_count(self, params: BlockData) -> int:
        return int(params.get("masters", 3)) * (1 + int(params.get("replicas", 1)))

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        urls = node_urls(lab, block, "redis", port, node)
        if node in (None, 0):
            # `http` is where `labctl load` points Locust: node 1, from which the Redis user
            # reads the slot map and finds every other node.
            urls = {"http": f"redis://{lab.bind}:{port}", **urls}
        return urls

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        if duration_ms(block.get("node_timeout", self.defaults["node_timeout"])) < MIN_NODE_TIMEOUT_MS:
            problems.append(((name, "node_timeout"), "expected at least 1s: shorter, a busy machine fails over "
                             "masters that only answered a ping late"))
        if int(block.get("wait_replicas", 0)) > int(block.get("replicas", 1)):
            problems.append(((name, "wait_replicas"), "expected at most `replicas`: WAIT could never be "
                             "answered by more replicas than a master has"))
        return problems

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.redis.cluster import form_cluster

        view = form_cluster(lab, block, timeout, progress)
        masters = ", ".join(f"{name} ({peer.slots} slots)" for name, peer in sorted(view.masters().items()))
        progress(f"{block.name}: cluster ok, 16384 slots served by {masters}")

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        from labctl.redis.cluster import cluster_view, master_of_slot

        view = cluster_view(block)
        masters = set(view.masters())
        running = [s for s in members if s.state == "running"]
        if role == "master":
            chosen = [s for s in running if s.name == master_of_slot(view, 0)]
        elif role == "masters":
            chosen = [s for s in running if s.name in masters]
        else:
            chosen = [s for s in running if s.name not in masters] if masters else []
        if not chosen:
            raise UsageError(f"lab '{lab.name}' has no {block.name} {role} right now (no node reports one); "
                             f"see 'labctl db status {lab.name}'")
        return sorted(chosen, key=lambda s: s.name)

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        port = block.host_ports("client")[0]
        return [f"labctl db status {lab.name}",
                f"docker exec {lab.project}-{block.instances()[0]} redis-cli -p {port} cluster shards"]

    def db_status(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        from labctl.redis.cluster import status

        return status(lab, block)

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        from labctl.redis.drill_redis import RedisDrill

        RedisDrill(lab, block, progress).subscribe(events)

    def load_environment(self, lab: Lab, block: Block) -> dict[str, str]:
        return {"LABCTL_REDIS_WAIT": str(block.params.get("wait_replicas", 0))}

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        from labctl.experiments import ledger
        from labctl.redis.drill_redis import writes_report

        if not any(run_dir.glob(ledger.LEDGER_GLOB)):
            return {}
        progress("reading every write back from the masters")
        return {"db": writes_report(block, run_dir, [])}

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        from labctl.redis.drill_redis import report_rows

        return report_rows(report)

    def drill_steps(self) -> dict[str, Any]:
        return {"reshard": RESHARD_STEP}

    def drill_expectations(self) -> dict[str, Expectation]:
        # Same names and meaning as the db kind's, so compare puts them in one table.
        return {
            **ledger_expectations(),
            "failover_within": Expectation(
                DRILL_DURATION, lambda m: (m.get("failover") or {}).get("promoted_s"),
                lambda e, o: o is not None and o <= parse_duration(str(e))),
            "min_redirects": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: (m.get("redirects") or {}).get("total"),
                lambda e, o: o is not None and o >= e),
        }


KIND = RedisKind()
