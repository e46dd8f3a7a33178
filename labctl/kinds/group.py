"""MySQL Group Replication: 3 (or more) members, one primary elected by the group itself."""

from __future__ import annotations

import uuid
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
from labctl.kinds.fragments import CONFLICTING_UPDATES, CPUS, MEMORY, node_publish

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState

MODES = ("single-primary", "multi-primary")
# group_replication_consistency: eventual (MySQL's default) lets a secondary answer before it
# has applied what the group certified; before makes each read wait for that, after makes
# each commit wait until every member has applied it.
CONSISTENCY = ("eventual", "before", "after", "before_and_after")
# group_replication_member_expel_timeout takes whole seconds, 0..3600.
MAX_EXPEL_S = 3600
# The port each member's group communication (XCom) listens on.
XCOM_PORT = 33061
# Seconds a joiner waits before another round of donors after every donor failed its
# recovery; MySQL's 60 is most of a rejoin after a partition that went wrong once.
RECOVERY_RECONNECT_S = 5


class GroupKind(BlockKind):
    name = "group"
    properties: ClassVar[dict[str, Any]] = {
        "nodes": {"type": "integer", "minimum": 3, "maximum": 5},
        "mode": {"enum": list(MODES)},
        "expel_timeout": DURATION,
        "unreachable_majority_timeout": DURATION,
        "consistency": {"enum": list(CONSISTENCY)},
        "cpus": CPUS,
        "memory": MEMORY,
        "publish": node_publish("mysql", "member"),
    }
    # labctl starts the group and asks each member for its view through its published port.
    required = ("publish",)
    # MySQL's own defaults: member_expel_timeout 5 s (since 8.0.21), unreachable_majority_timeout
    # 0 (a member cut off in a minority waits for the majority for ever).
    defaults: ClassVar[dict[str, Any]] = {"nodes": 3, "mode": "single-primary", "expel_timeout": "5s",
                                          "unreachable_majority_timeout": "0s", "consistency": "eventual"}
    config_files = ("gr-agent.sh",)
    numbered = True
    port_per_node = True
    stores_data = True
    mysql_router = "haproxy/db-router.cfg.j2"
    # `primary`: the member the group elected (in multi-primary mode, the first writable one).
    target_roles = ("primary", "secondaries")

    def node_count(self, params: BlockData) -> int:
        return int(params.get("nodes", 3))

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        return node_urls(lab, block, "mysql", port, node)

    def image_role(self, block: Block) -> str:
        return "mysql"

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        group: dict[str, object] = {
            "group_name": group_name(lab.project, block.name), "xcom_port": XCOM_PORT,
            "recovery_reconnect_s": RECOVERY_RECONNECT_S,
            "seeds": ",".join(f"{node}:{XCOM_PORT}" for node in block.instances()),
            "expel_s": duration_ms(str(block.params["expel_timeout"])) // 1000,
            "unreachable_s": duration_ms(str(block.params["unreachable_majority_timeout"])) // 1000}
        members: list[ConfigTemplate] = [
            ("group/member.cnf.j2", f"{node}.cnf", {"node": node, "server_id": index, **group})
            for index, node in enumerate(block.instances(), start=1)]
        return [*members, *super().config_templates(lab, block)]

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        for key, most in (("expel_timeout", MAX_EXPEL_S), ("unreachable_majority_timeout", 31536000)):
            value = duration_ms(str(block.get(key, "0s")))
            if value % 1000 or value > most * 1000:
                problems.append(((name, key), f"expected whole seconds from 0s to {most}s (MySQL takes seconds)"))
        return problems

    def prepare_folder(self, lab: Lab, block: Block, folder: Path) -> None:
        from labctl.db.secrets import ensure_secrets

        ensure_secrets(folder)

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.group.members import ensure_group

        ensure_group(lab, block, progress, timeout)

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        from labctl.group.members import group_views, primary_of

        primary = primary_of(group_views(lab, block))
        running = [s for s in members if s.state == "running"]
        chosen = [s for s in running if (s.name == primary) == (role == "primary")] if primary else []
        if not chosen:
            raise UsageError(f"lab '{lab.name}' has no {role} in an ONLINE majority of {block.name} "
                             f"right now; see 'labctl db status {lab.name}'")
        return sorted(chosen, key=lambda s: s.name)

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        return [f"labctl db status {lab.name}"]

    def db_status(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        from labctl.group.members import status

        return status(lab, block)

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        from labctl.group.drill_group import GroupDrill

        GroupDrill(lab, block, progress).subscribe(events)

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        from labctl.group.drill_group import writes_report

        return ledger_load_report(run_dir, progress, "the primary", lambda: writes_report(lab, block, run_dir, None))

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        from labctl.group.drill_group import report_rows

        return report_rows(report)

    def drill_steps(self) -> dict[str, Any]:
        # Clients updating the same rows, one through each member named (default: the first two).
        return {"conflicting_updates": CONFLICTING_UPDATES}

    def drill_expectations(self) -> dict[str, Expectation]:
        return {
            **ledger_expectations(),
            "members_agree": Expectation(
                {"type": "boolean"}, lambda m: _conflict(m).get("agreement", {}).get("agree"),
                lambda e, o: o is not None and o == e),
            "max_lost_updates": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: _conflict(m).get("lost_updates"),
                lambda e, o: o is not None and o <= e),
            "max_minority_writes": Expectation(
                {"type": "integer", "minimum": 0}, lambda m: (m.get("group") or {}).get("minority_writes"),
                lambda e, o: o is not None and o <= e),
            "new_primary_within": Expectation(
                DURATION, lambda m: ((m.get("group") or {}).get("election") or {}).get("seconds"),
                lambda e, o: o is not None and o <= duration_ms(str(e)) / 1000),
            "rejoin_within": Expectation(
                DURATION, lambda m: ((m.get("group") or {}).get("rejoin") or {}).get("seconds"),
                lambda e, o: o is not None and o <= duration_ms(str(e)) / 1000),
        }


def _conflict(measured: dict[str, Any]) -> dict[str, Any]:
    return dict((measured.get("group") or {}).get("conflict") or {})


def group_name(project: str, block: str) -> str:
    """The group's UUID: the same for every member, and stable for one lab's block."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"labctl:{project}:{block}"))


KIND = GroupKind()
