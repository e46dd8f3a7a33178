"""Which recorded faults are still in effect: only those whose container was not made again since."""

from __future__ import annotations

import pytest

from labctl.experiments import chaos
from labctl.runtime import inventory


def _state(container: str, created: float) -> inventory.ServiceState:
    return inventory.ServiceState(container.removeprefix("labctl-x-"), "app", "app", container, "paused", "none", {},
                                  created=created)


def test_a_fault_on_a_container_made_again_since_is_not_in_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    faults = [chaos.Fault("a1", 1000.0, "pause", "app-1", "labctl-x-app-1", revert=[["unpause"]]),
              chaos.Fault("a2", 1000.0, "kill", "app-2", "labctl-x-app-2", revert=[["start"]]),
              chaos.Fault("a3", 1000.0, "kill", "app-3", "labctl-x-app-3", revert=[["start"]])]
    monkeypatch.setattr(chaos, "active_faults", lambda lab: faults)
    # app-1 is the container the fault went into; app-2 was created again by a later `up`; app-3 is gone.
    monkeypatch.setattr(inventory, "service_states",
                        lambda lab: [_state("labctl-x-app-1", 990.0), _state("labctl-x-app-2", 1010.0)])
    assert [f.id for f in chaos.faults_in_effect("x")] == ["a1"]
