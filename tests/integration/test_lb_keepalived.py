"""lb-keepalived on a real Docker engine: two HAProxy nodes form one VRRP group with the
floating address on the higher priority node, killing that node under load moves the address
to the other within the drill's bound, and down leaves nothing. One lab up for the module."""

from __future__ import annotations

import json
from typing import Any

import pytest

from labctl.model.lab import load_lab
from labctl.vrrp.address import AddressView, address_view
from tests.integration.conftest import Cli, lab_for_module

LAB = "lb-keepalived"


@pytest.fixture(scope="module")
def vrrp_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    return lab_for_module(tmp_path_factory, request, LAB)


def _view() -> AddressView:
    lab = load_lab(LAB)
    return address_view(lab, lab.blocks["lb"])


def test_the_address_is_on_the_master_only(vrrp_lab: Cli) -> None:
    # lb-1 (priority 150) wins when both start together; with nopreempt, a busy machine that
    # starts lb-1's keepalived late leaves the address with lb-2, which keeps it.
    view = _view()
    assert len(view.holders) == 1
    states = {n.name: n.state for n in view.nodes}
    assert states[view.holders[0]] == "MASTER" and sorted(states.values()) == ["BACKUP", "MASTER"]
    status: dict[str, Any] = json.loads(vrrp_lab.ok("db", "status", LAB, "--json"))
    assert status["holder"] == view.holders[0] and status["address"] == "10.213.140.100"


def test_kill_active_lb_moves_the_address_to_the_standby(vrrp_lab: Cli) -> None:
    active = _view().holder
    result = vrrp_lab.run("drill", LAB, "kill-active-lb", "--json")
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    takeover = report["takeover"]
    assert takeover["old_holder"] == active and takeover["new_holder"] not in (None, active)
    assert 0 < takeover["takeover_s"] <= 6 and takeover["client_takeover_s"] is not None
    # Healed: the killed node runs again and, with nopreempt, waits as BACKUP.
    view = _view()
    assert view.holders == [takeover["new_holder"]] and all(n.running for n in view.nodes)
