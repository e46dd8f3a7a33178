"""Fault targets named by lab roles (`lb`, `app`, `app.2`, `random:app`), not container ids."""

from __future__ import annotations

import random

from labctl.errors import UsageError
from labctl.runtime import inventory

DB_ROLES = ("primary", "replicas")


def valid_targets(states: list[inventory.ServiceState]) -> list[str]:
    """Every name a target can take in a running lab."""
    blocks = sorted({s.block for s in states if s.block})
    roles = [f"{s.block}.{r}" for s in states if s.kind == "db" and s.name.endswith("-1") for r in DB_ROLES]
    instances = sorted(s.name.replace("-", ".") if _replicated(s) else s.name for s in states)
    return [*blocks, *roles, *(f"random:{b}" for b in blocks), *[i for i in instances if i not in blocks]]


def _db_role(lab: str, spec: str, states: list[inventory.ServiceState]) -> list[inventory.ServiceState] | None:
    """`db.primary` and `db.replicas` name whichever nodes hold those roles right now."""
    block, _, role = spec.partition(".")
    members = [s for s in states if s.block == block and s.kind == "db"]
    if role not in DB_ROLES or not members:
        return None
    from labctl.db import nodes as db
    from labctl.render import running_lab

    found = db.states(running_lab(lab))
    primary = db.current_primary(found)
    wanted = {primary.node.name} if role == "primary" and primary else set()
    if role == "replicas":
        wanted = {s.node.name for s in found if s.reachable and s.role == "replica"}
    chosen = sorted((s for s in members if s.name in wanted), key=lambda s: s.name)
    if not chosen:
        raise UsageError(f"lab '{lab}' has no {role} right now; see 'labctl db status {lab}'")
    return chosen


def _replicated(state: inventory.ServiceState) -> bool:
    return state.name != state.block and state.name.startswith(f"{state.block}-")


def resolve(lab: str, spec: str) -> list[inventory.ServiceState]:
    """The containers a target names; an unknown target lists the valid ones."""
    states = inventory.service_states(lab)
    if not states:
        raise UsageError(f"lab '{lab}' is not up; start it with 'labctl up {lab}'")
    role = _db_role(lab, spec, states)
    if role is not None:
        return role
    if spec.startswith("random:"):
        members = [s for s in states if s.block == spec.removeprefix("random:")]
        if members:
            return [random.choice(members)]
    found = [s for s in states if spec in (s.block, s.name, s.name.replace("-", "."))]
    if found:
        return sorted(found, key=lambda s: s.name)
    raise UsageError(f"lab '{lab}' has no target '{spec}' (targets: {', '.join(valid_targets(states))})")
