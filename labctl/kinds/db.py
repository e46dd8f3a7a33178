"""A MySQL or MariaDB primary with replicas: node 1 is the primary at `up`, GTID replication."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.durations import DURATION, parse_duration
from labctl.errors import LabctlError, UsageError
from labctl.kinds.base import (
    BlockData,
    BlockKind,
    ConfigTemplate,
    Expectation,
    Injector,
    Progress,
    ledger_expectations,
    node_urls,
)
from labctl.kinds.fragments import CPUS, MEMORY, node_publish

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState


class DbKind(BlockKind):
    name = "db"
    properties: ClassVar[dict[str, Any]] = {
        "flavor": {"enum": ["mysql", "mariadb"]},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 8},
        "replication": {"enum": ["async", "semisync"]},
        "gtid": {"const": True, "description": "true (replication always uses GTID auto-positioning)"},
        "semisync_timeout": DURATION,
        "cpus": CPUS,
        "memory": MEMORY,
        "publish": node_publish("mysql", "node"),
    }
    # labctl reaches every node on its published port to set up and watch replication.
    required = ("publish",)
    defaults: ClassVar[dict[str, Any]] = {
        "flavor": "mysql",
        "replicas": 2,
        "replication": "async",
        "gtid": True,
        "semisync_timeout": "10s",
    }
    numbered = True
    port_per_node = True
    stores_data = True
    mysql_router = "haproxy/db-router.cfg.j2"
    target_roles = ("primary", "replicas")

    def node_count(self, params: BlockData) -> int:
        return int(params.get("replicas", 2)) + 1

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        return node_urls(lab, block, "mysql", port, node)

    def image_role(self, block: Block) -> str:
        return str(block.params["flavor"])

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        return [("db/node.cnf.j2", f"{node}.cnf", {"node": node, "server_id": index})
                for index, node in enumerate(block.instances(), start=1)]

    def prepare_folder(self, lab: Lab, block: Block, folder: Path) -> None:
        from labctl.db.secrets import ensure_secrets

        ensure_secrets(folder)

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.db.setup import ensure_replication

        ensure_replication(lab, progress, timeout=timeout)

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        from labctl.db import nodes as db

        found = db.states(lab)
        primary = db.current_primary(found)
        wanted = {primary.node.name} if role == "primary" and primary else set()
        if role == "replicas":
            wanted = {s.node.name for s in found if s.reachable and s.role == "replica"}
        chosen = sorted((s for s in members if s.name in wanted), key=lambda s: s.name)
        if not chosen:
            raise UsageError(f"lab '{lab.name}' has no {role} right now; see 'labctl db status {lab.name}'")
        return chosen

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        return [f"labctl db status {lab.name}"]

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        from labctl.db.drill_db import DbDrill

        DbDrill(lab, progress).subscribe(events)

    def faults(self) -> dict[str, Injector]:
        return {"replica-delay": _replica_delay, "drop-table": _drop_table}

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        from labctl.db.load_db import writes_report
        from labctl.experiments import ledger

        if not any(run_dir.glob(ledger.LEDGER_GLOB)):
            return {}
        progress("checking the writes against the primary")
        writes = writes_report(lab.name, run_dir, started, ended)
        return {} if writes is None else {"db": writes}

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        from labctl.db.drill_db import report_rows

        return report_rows(report)

    def drill_steps(self) -> dict[str, Any]:
        return {"failover": {"enum": ["auto", "now"]}, "backup": {"const": "now"},
                "restore": {"const": "before-drop", "description": "before-drop (restore the drill's backup "
                            "to just before the DROP of the ledger's table)"}}

    def drill_expectations(self) -> dict[str, Expectation]:
        return {**ledger_expectations(), "restore_within": Expectation(
            DURATION, lambda m: m.get("restore", {}).get("seconds"),
            lambda e, o: o is not None and o <= parse_duration(str(e)))}


def _replica_delay(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    from labctl.db.nodes import lab_flavor
    from labctl.running import attach
    from labctl.runtime import local_runtime

    flavor = lab_flavor(attach(lab).lab)
    seconds = max(1, round(int(params.get("ms", 2000)) / 1000))
    result = local_runtime().exec(name, _db_client(flavor.delay_statements(seconds)))
    if result.exit_code != 0:
        raise LabctlError(f"{name} did not take a replication delay of {seconds} s: is it a db replica? "
                          f"{result.output.strip()[-200:]}")
    return [["exec", *_db_client(flavor.delay_statements(0))]]


def _drop_table(name: str, params: dict[str, Any], lab: str) -> list[list[str]]:
    """The accident a backup is for: DROP TABLE of the ledger's table. Nothing can revert it but
    a restore (`labctl db restore`, or a drill's `restore: before-drop` step)."""
    from labctl.db.drill_backup import LEDGER_TABLE
    from labctl.runtime import local_runtime

    result = local_runtime().exec(name, _db_client([f"DROP TABLE {LEDGER_TABLE}"]))
    if result.exit_code != 0:
        raise LabctlError(f"{name} did not drop {LEDGER_TABLE}: is it the db primary, and is the table there? "
                          f"{result.output.strip()[-200:]}")
    return []


def _db_client(statements: list[str]) -> list[str]:
    # Runs inside the db container with its own client, so no connection from the host is needed.
    sql = "; ".join(statements)
    client = '"$(command -v mariadb || command -v mysql)"'
    return ["bash", "-c", f'MYSQL_PWD=$MYSQL_ROOT_PASSWORD {client} -uroot -e "{sql}"']


KIND = DbKind()
