"""Fault targets named by lab roles (`lb`, `app`, `app.2`, `random:app`), not container ids."""

from __future__ import annotations

import random

from labctl import inventory
from labctl.errors import UsageError


def valid_targets(states: list[inventory.ServiceState]) -> list[str]:
    """Every name a target can take in a running lab."""
    blocks = sorted({s.block for s in states if s.block})
    instances = sorted(s.name.replace("-", ".") if _replicated(s) else s.name for s in states)
    return [*blocks, *(f"random:{b}" for b in blocks), *[i for i in instances if i not in blocks]]


def _replicated(state: inventory.ServiceState) -> bool:
    return state.name != state.block and state.name.startswith(f"{state.block}-")


def resolve(lab: str, spec: str) -> list[inventory.ServiceState]:
    """The containers a target names; an unknown target lists the valid ones."""
    states = inventory.service_states(lab)
    if not states:
        raise UsageError(f"lab '{lab}' is not up; start it with 'labctl up {lab}'")
    if spec.startswith("random:"):
        members = [s for s in states if s.block == spec.removeprefix("random:")]
        if members:
            return [random.choice(members)]
    found = [s for s in states if spec in (s.block, s.name, s.name.replace("-", "."))]
    if found:
        return sorted(found, key=lambda s: s.name)
    raise UsageError(f"lab '{lab}' has no target '{spec}' (targets: {', '.join(valid_targets(states))})")
