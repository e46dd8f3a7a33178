"""A MariaDB Galera cluster: 3 (or more) nodes that all take writes, synchronously certified."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.durations import DURATION, duration_ms
from labctl.errors import UsageError
from labctl.kinds.base import (
    BlockData,
    BlockKind,
    ConfigTemplate,
    Expectation,
    FieldProblem,
    Progress,
    ledger_expectations,
    ledger_load_report,
    node_urls,
)
from labctl.kinds.fragments import CONFLICTING_UPDATES, CPUS, MEMORY, SWITCH, node_publish

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState


class GaleraKind(BlockKind):
    name = "galera"
    properties: ClassVar[dict[str, Any]] = {
        "nodes": {"type": "integer", "minimum": 2, "maximum": 5},
        "sst": {"enum": ["rsync", "mariabackup"]},
        "suspect_timeout": DURATION,
        "sync_wait": SWITCH,
        "arbitrator": SWITCH,
        "cpus": CPUS,
        "memory": MEMORY,
        "publish": node_publish("mysql", "node"),
    }
    # labctl asks every node for its wsrep state through its published port.
    required = ("publish",)
    # Galera's own defaults: evs.suspect_timeout PT5S, wsrep_sync_wait 0.
    defaults: ClassVar[dict[str, Any]] = {"nodes": 3, "sst": "rsync", "suspect_timeout": "5s", "sync_wait": False,
                                          "arbitrator": False}
    config_files = ("galera-start.sh", "galera-agent.sh")
    numbered = True
    port_per_node = True
    stores_data = True
    mysql_router = "haproxy/galera-router.cfg.j2"
    # `writer`: the node HAProxy sends writes to (the first synced node); `others`: the rest;
    # `arbitrator`: garbd, when the block has one.
    target_roles = ("writer", "others", "arbitrator")

    def node_count(self, params: BlockData) -> int:
        return int(params.get("nodes", 3))

    def services(self, block: Block) -> list[str]:
        extra = [arbitrator_service(block)] if block.params.get("arbitrator") else []
        return [*block.instances(), *extra]

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        return node_urls(lab, block, "mysql", port, node)

    def image_role(self, block: Block) -> str:
        return "mariadb"

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        suspect = duration_ms(str(block.params["suspect_timeout"]))
        timing: dict[str, object] = {"suspect": _iso_seconds(suspect), "peers": block.instances(),
                                     "inactive": _iso_seconds(max(15000, 3 * suspect))}
        nodes: list[ConfigTemplate] = [("galera/node.cnf.j2", f"{node}.cnf", {"node": node, **timing})
                                       for node in block.instances()]
        if block.params.get("arbitrator"):
            nodes.append(("galera/garbd.cfg.j2", "garbd.cfg", timing))
        return [*nodes, *super().config_templates(lab, block)]

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        if duration_ms(str(block.get("suspect_timeout", "5s"))) < 1000:
            return [((name, "suspect_timeout"), "expected at least 1s (Galera checks its peers every second)")]
        return []

    def prepare_folder(self, lab: Lab, block: Block, folder: Path) -> None:
        from labctl.db.secrets import ensure_secrets

        ensure_secrets(folder)

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.galera.cluster import ensure_cluster

        ensure_cluster(lab, block, progress, timeout)

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        from labctl.galera.cluster import cluster_views, writer_of

        if role == "arbitrator":
            return _arbitrator_of(lab, block, members)
        writer = writer_of(cluster_views(lab, block))
        running = [s for s in members if s.state == "running" and s.name in block.instances()]
        chosen = [s for s in running if (s.name == writer) == (role == "writer")] if writer else []
        if not chosen:
            raise UsageError(f"lab '{lab.name}' has no synced {block.name} node right now; "
                             f"see 'labctl db status {lab.name}'")
        return sorted(chosen, key=lambda s: s.name)

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        return [f"labctl db status {lab.name}"]

    def db_status(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        from labctl.galera.cluster import status

        return status(lab, block)

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        from labctl.galera.drill_galera import GaleraDrill

        GaleraDrill(lab, block, progress).subscribe(events)

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        from labctl.galera.drill_galera import writes_report

        return ledger_load_report(run_dir, progress, "a synced node", lambda: writes_report(lab, block, run_dir, None))

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        from labctl.galera.drill_galera import report_rows

        return report_rows(report)

    def drill_steps(self) -> dict[str, Any]:
        # Two clients (on the first two nodes unless `through` names them) update the same hot rows.
        return {"conflicting_updates": CONFLICTING_UPDATES}

    def drill_expectations(self) -> dict[str, Expectation]:
        return {
            **ledger_expectations(),
            "max_non_primary_writes": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: (m.get("galera") or {}).get("non_primary_writes"),
                lambda e, o: o is not None and o <= e),
            # While a node is dead: the survivors must keep accepting writes (an arbitrator
            # keeps the quorum), or must accept none (two nodes without one have no quorum).
            "min_survivor_writes": Expectation(
                {"type": "integer", "minimum": 1}, lambda m: (m.get("galera") or {}).get("survivor_writes"),
                lambda e, o: o is not None and o >= e),
            "max_survivor_writes": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: (m.get("galera") or {}).get("survivor_writes"),
                lambda e, o: o is not None and o <= e),
            "min_deadlocks": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: _conflict(m).get("deadlocks"),
                lambda e, o: o is not None and o >= e),
            "max_lost_updates": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: _conflict(m).get("lost_updates"),
                lambda e, o: o is not None and o <= e),
            "nodes_agree": Expectation(
                {"const": True}, lambda m: _conflict(m).get("nodes_agree"), lambda e, o: o is True),
            "rejoin_within": Expectation(
                DURATION, lambda m: ((m.get("galera") or {}).get("rejoin") or {}).get("seconds"),
                lambda e, o: o is not None and o <= duration_ms(str(e)) / 1000),
        }


def _conflict(measured: dict[str, Any]) -> dict[str, Any]:
    return dict((measured.get("galera") or {}).get("conflict") or {})


def arbitrator_service(block: Block) -> str:
    """The service name of the block's garbd."""
    return f"{block.service_base}-arbitrator"


def _arbitrator_of(lab: Lab, block: Block, members: list[ServiceState]) -> list[ServiceState]:
    found = [s for s in members if s.name == arbitrator_service(block)]
    if not found:
        raise UsageError(f"{block.name} has no arbitrator in lab '{lab.name}'; bring it up with "
                         f"'labctl up {lab.name} --set {block.name}.arbitrator=true'")
    return found


def _iso_seconds(ms: int) -> str:
    """Galera's duration format: PT5S, PT1.5S."""
    return f"PT{ms / 1000:g}S"


KIND = GaleraKind()
