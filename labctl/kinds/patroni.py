"""PostgreSQL run by Patroni: 2 to 5 nodes that elect their primary through a lock in etcd."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.durations import DRILL_DURATION, parse_duration
from labctl.errors import UsageError
from labctl.kinds.base import (
    BlockData,
    BlockKind,
    ConfigTemplate,
    Expectation,
    FieldProblem,
    Progress,
    blocks_of,
    ledger_expectations,
    ledger_load_report,
    node_urls,
    reference,
)
from labctl.kinds.fragments import CPUS, MEMORY, PORT, SWITCH

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState

# Patroni's own floors (its validator refuses less, or raises it to them).
MINIMUMS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
SECONDS: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 3600, "description": "whole seconds"}
_PUBLISH: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["postgres", "api"],
    "description": "a mapping with postgres and api: node 1's host ports (node N gets them + N - 1)",
    "properties": {"postgres": {**PORT, "maximum": 65000}, "api": {**PORT, "maximum": 65000}},
}


class PatroniKind(BlockKind):
    name = "patroni"
    properties: ClassVar[dict[str, Any]] = {
        "nodes": {"type": "integer", "minimum": 2, "maximum": 5},
        "dcs": {"type": "string", "description": "the name of the etcd block that holds the leader lock"},
        "ttl": SECONDS,
        "loop_wait": SECONDS,
        "retry_timeout": SECONDS,
        "maximum_lag_on_failover": {"type": "integer", "minimum": 0},
        "synchronous_mode": SWITCH,
        "failsafe_mode": SWITCH,
        "cpus": CPUS,
        "memory": MEMORY,
        "publish": _PUBLISH,
    }
    # labctl asks every node's Patroni REST API, and postgres, through its published ports.
    required = ("dcs", "publish")
    # Patroni's own defaults.
    defaults: ClassVar[dict[str, Any]] = {"nodes": 3, "ttl": 30, "loop_wait": 10, "retry_timeout": 10,
                                          "maximum_lag_on_failover": 1048576, "synchronous_mode": False,
                                          "failsafe_mode": False}
    numbered = True
    port_per_node = True
    stores_data = True
    names_backends = False
    # Not MySQL: the attribute names the HAProxy config that routes to this database.
    mysql_router = "haproxy/patroni-router.cfg.j2"
    database_scheme = "postgres"
    # `primary`: whoever holds the leader lock now; `replicas`: the others.
    target_roles = ("primary", "replicas")

    def node_count(self, params: BlockData) -> int:
        return int(params.get("nodes", 3))

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        if endpoint == "api":
            return {f"{name} api": url for name, url in node_urls(lab, block, "http", port, node).items()}
        return node_urls(lab, block, "postgres", port, node)

    def image_role(self, block: Block) -> str:
        return "postgres"

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        dcs = lab.blocks[str(block.params["dcs"])]
        return [("patroni/patroni.yml.j2", f"{node}.yml", {"node": node, "dcs": dcs}) for node in block.instances()]

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        found = reference(name, block, "dcs", blocks_of(blocks, "etcd"), "an etcd block")
        values = {key: int(block.get(key, self.defaults[key])) for key in MINIMUMS}
        for key, floor in MINIMUMS.items():
            if values[key] < floor:
                found.append(((name, key), f"expected at least {floor} (Patroni refuses less)"))
        if values["loop_wait"] + 2 * values["retry_timeout"] > values["ttl"]:
            found.append(((name, "ttl"), f"expected at least loop_wait + 2 x retry_timeout "
                          f"({values['loop_wait'] + 2 * values['retry_timeout']}): a primary must be able to give "
                          "up on its store and demote itself before its lock expires (Patroni would shrink "
                          "loop_wait and retry_timeout to fit)"))
        return found

    def prepare_folder(self, lab: Lab, block: Block, folder: Path) -> None:
        from labctl.patroni.cluster import ensure_env_file

        ensure_env_file(folder)

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.patroni.cluster import ensure_cluster

        ensure_cluster(lab, block, progress, timeout)

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        from labctl.patroni.cluster import cluster_view

        leader = cluster_view(block).leader
        running = [s for s in members if s.state == "running" and s.name in block.instances()]
        chosen = [s for s in running if (s.name == leader) == (role == "primary")] if leader else []
        if not chosen:
            raise UsageError(f"lab '{lab.name}' has no {block.name} {role} right now (no member holds the "
                             f"leader lock); see 'labctl db status {lab.name}'")
        return sorted(chosen, key=lambda s: s.name)

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        return [f"labctl db status {lab.name}",
                f"docker exec {lab.project}-{block.instances()[0]} patronictl -c /etc/patroni/patroni.yml list"]

    def db_status(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        from labctl.patroni.cluster import status

        return status(lab, block)

    def db_check(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        from labctl.patroni.cluster import check

        return check(lab, block)

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        from labctl.patroni.drill_patroni import PatroniDrill

        PatroniDrill(lab, block, progress).subscribe(events)

    def load_environment(self, lab: Lab, block: Block) -> dict[str, str]:
        from labctl.patroni.cluster import load_environment

        return load_environment(lab, block)

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        from labctl.patroni.drill_patroni import writes_report

        return ledger_load_report(run_dir, progress, "the primary", lambda: writes_report(lab, block, run_dir, None))

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        from labctl.patroni.drill_patroni import report_rows

        return report_rows(report)

    def drill_expectations(self) -> dict[str, Expectation]:
        # Same names and meaning as the db kind's, so compare puts them in one table.
        return {
            **ledger_expectations(),
            "failover_within": Expectation(
                DRILL_DURATION, lambda m: (m.get("patroni") or {}).get("promoted_s"),
                lambda e, o: o is not None and o <= parse_duration(str(e))),
            # A probe's INSERTs straight to the old primary's port while the fault lasted.
            "max_cut_off_acks": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: _cut_off(m).get("accepted"),
                lambda e, o: o is not None and o <= e),
            "max_cut_off_lost": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: _cut_off(m).get("accepted_then_lost"),
                lambda e, o: o is not None and o <= e),
            "demoted_within": Expectation(
                DRILL_DURATION, lambda m: (m.get("patroni") or {}).get("demoted_s"),
                lambda e, o: o is not None and o <= parse_duration(str(e))),
            "primary_kept": Expectation(
                {"type": "boolean"}, lambda m: (m.get("patroni") or {}).get("primary_kept"),
                lambda e, o: o is e),
        }


def _cut_off(measured: dict[str, Any]) -> dict[str, Any]:
    return dict((measured.get("patroni") or {}).get("cut_off") or {})


KIND = PatroniKind()
