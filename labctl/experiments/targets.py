"""Fault targets named by lab roles (`lb`, `app`, `app.2`, `random:app`), not container ids."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from labctl import kinds
from labctl.errors import UsageError
from labctl.kinds.base import BlockKind
from labctl.runtime import inventory

if TYPE_CHECKING:
    from labctl.model.lab import Lab


def valid_targets(states: list[inventory.ServiceState]) -> list[str]:
    """Every name a target can take in a running lab."""
    blocks = sorted({s.block for s in states if s.block})
    roles = [f"{block}.{role}" for block, kind in _block_kinds(states).items() for role in kind.target_roles]
    instances = sorted(s.name.replace("-", ".") if _replicated(s) else s.name for s in states)
    return [*blocks, *roles, *(f"random:{b}" for b in blocks), *[i for i in instances if i not in blocks]]


def _block_kinds(states: list[inventory.ServiceState]) -> dict[str, BlockKind]:
    """Block name -> kind, for the blocks of a running lab whose kind is known."""
    return {s.block: kinds.REGISTRY[s.kind] for s in states if s.block and s.kind in kinds.REGISTRY}


def _role(lab: Lab, spec: str, states: list[inventory.ServiceState]) -> list[inventory.ServiceState] | None:
    """`db.primary`, `db.replicas`: whichever containers hold a role a kind offers, right now."""
    block, _, role = spec.partition(".")
    kind = _block_kinds(states).get(block)
    if kind is None or role not in kind.target_roles or block not in lab.blocks:
        return None
    members = [s for s in states if s.block == block]
    return kind.resolve_role(lab, lab.blocks[block], role, members)


def _replicated(state: inventory.ServiceState) -> bool:
    return state.name != state.block and state.name.startswith(f"{state.block}-")


def resolve(lab: Lab, spec: str, states: list[inventory.ServiceState]) -> list[inventory.ServiceState]:
    """The containers a target names in a running lab; an unknown target lists the valid ones."""
    if not states:
        raise UsageError(f"lab '{lab.name}' is not up; start it with 'labctl up {lab.name}'")
    role = _role(lab, spec, states)
    if role is not None:
        return role
    if spec.startswith("random:"):
        members = [s for s in states if s.block == spec.removeprefix("random:")]
        if members:
            return [random.choice(members)]
    found = [s for s in states if spec in (s.block, s.name, s.name.replace("-", "."))]
    if found:
        return sorted(found, key=lambda s: s.name)
    raise UsageError(f"lab '{lab.name}' has no target '{spec}' (targets: {', '.join(valid_targets(states))})")
