"""The keepalived kind: validation of its VRRP fields, the rendered node configs and compose
services, the client sending to the floating address, and the drill's takeover figures."""

from __future__ import annotations

from pathlib import Path

import yaml

from labctl.experiments.timeline import Sample
from labctl.lifecycle import required_roles
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files
from labctl.vrrp.address import AddressView, NodeState
from labctl.vrrp.drill_vrrp import client_takeover, report_rows, takeover_report
from tests.unit.test_lab_validation import labs_root, problems_of, write_lab  # noqa: F401

IMAGES = {"app": "labctl/app:local", "dns": "labctl/dns:local", "keepalived": "labctl/keepalived:local"}
LAB = ("title: t\nsummary: s\napp: {kind: app, replicas: 2}\n"
       "lb:\n  kind: keepalived\n  backends: app\n  nodes: 2\n  priorities: [150, 100]\n"
       "  advert_interval: 1s\n  address: 10.213.140.100\n"
       "client: {kind: client, floating_ip_of: lb}\n")


def test_every_vrrp_field_is_checked_with_the_field_named(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "k", LAB)
    assert problems_of("k", ["lb.priorities=[150]", "lb.advert_interval=15ms", "lb.address=10.213.140.200"]) == [
        "--set lb.priorities=[150] lb.priorities: expected 2 priorities, one per node, got 1",
        "--set lb.advert_interval=15ms lb.advert_interval: expected a multiple of 10ms from 10ms to 40.95s "
        "(VRRPv3 counts centiseconds), got '15ms'",
        "--set lb.address=10.213.140.200 lb.address: expected an address in 10.213.140.0/25 other than "
        "10.213.140.0 and 10.213.140.1 (Docker gives containers the upper half of 10.213.140.0/24), "
        "got '10.213.140.200'",
    ]
    assert problems_of("k", ["lb.priorities=[100, 100]", "lb.nodes=5", "lb.router_id=0"]) == [
        "--set lb.nodes=5 lb.nodes: expected an integer from 2 to 4, got 5",
        "--set lb.router_id=0 lb.router_id: expected an integer from 1 to 255, got 0",
    ]
    assert problems_of("k", ["lb.priorities=[100, 100]"]) == [
        "--set lb.priorities=[100, 100] lb.priorities: expected different priorities, got [100, 100]"]
    assert problems_of("k", ["lb.subnet=10.9.0.1/24", "lb.priorities=[255, 1]"])[0].startswith(
        "--set lb.priorities=[255, 1] lb.priorities[0]: expected an integer from 1 to 254, got 255")


def test_client_names_a_keepalived_block_or_a_dns_block_not_both(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "k", LAB + "other: {kind: client, floating_ip_of: app}\n"
              "both: {kind: client, floating_ip_of: lb, dns: lb}\n")
    assert problems_of("k") == [
        "k/lab.yaml:12 other.floating_ip_of: expected the name of a keepalived block (lb), got 'app'",
        "k/lab.yaml:13 both.floating_ip_of: a client resolves a name (dns) or sends to a floating address "
        "(floating_ip_of), not both",
    ]


def test_each_node_gets_its_priority_and_the_network_its_subnet() -> None:
    lab = load_lab("lb-keepalived", parse_overrides(["lb.advert_interval=200ms", "lb.preempt=true"]))
    files = render_files(lab, IMAGES)
    first, second = files["lb/keepalived-1.conf"], files["lb/keepalived-2.conf"]
    assert "priority 150" in first and "priority 100" in second
    assert "advert_int 0.2" in first and "nopreempt" not in first
    assert "10.213.140.100/24 dev eth0" in second
    compose = yaml.safe_load(files["compose.yaml"])
    node = compose["services"]["lb-2"]
    assert node["cap_add"] == ["NET_ADMIN", "NET_BROADCAST", "NET_RAW"] and "privileged" not in node
    assert node["ports"] == ["127.0.0.1:13481:8080", "127.0.0.1:13491:8404"]
    assert "./lb/keepalived-2.conf:/etc/keepalived/keepalived.conf:ro" in node["volumes"]
    assert compose["services"]["client"]["environment"]["LABCTL_TARGET_ADDRESS"] == "10.213.140.100"
    assert compose["networks"]["lab"]["ipam"]["config"] == [
        {"subnet": "10.213.140.0/24", "ip_range": "10.213.140.128/25"}]
    assert required_roles(lab) == ["app", "dns", "keepalived"]


def test_default_priorities_step_down_from_node_one(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "k", LAB.replace("  priorities: [150, 100]\n", ""))
    files = render_files(load_lab("k", parse_overrides(["lb.nodes=3"])), IMAGES)
    assert ["priority 150" in files[f"lb/keepalived-{n}.conf"] for n in (1, 2)] == [True, False]
    assert "priority 130" in files["lb/keepalived-3.conf"]


def _view(at: float, holder: str | None) -> AddressView:
    return AddressView(at, "10.213.140.100", [NodeState(n, p, True, holds=n == holder)
                                              for n, p in (("lb-1", 150), ("lb-2", 100))])


def _sample(sent: float, ok: bool) -> Sample:
    return Sample(sent + 0.01, 10.0, "app-1" if ok else "", ok, service_ms=10.0)


def test_takeover_is_timed_from_the_kill_three_ways() -> None:
    views = [_view(99.9, "lb-1"), _view(100.5, None), _view(103.9, "lb-2")]
    samples = [_sample(99.0, True), _sample(100.2, False), _sample(103.5, False), _sample(103.8, True)]
    report = takeover_report({"target": "lb-1", "at": 100.0, "in_place_at": 100.3}, views,
                             {"lb-2": [(90.0, "BACKUP"), (103.61, "MASTER")]}, samples, 112.0)
    assert report["old_holder"] == "lb-1" and report["new_holder"] == "lb-2"
    assert (report["takeover_s"], report["address_seen_s"], report["fault_took_s"]) == (3.61, 3.9, 0.3)
    assert (report["client_takeover_s"], report["failed_requests"]) == (3.81, 2)
    assert [row[0] for row in report_rows({"takeover": report})] == ["takeover", "address seen moved",
                                                                     "client takeover"]


def test_no_failed_request_is_no_client_outage() -> None:
    assert client_takeover([_sample(100.5, True)], 100.0, 112.0) == {"client_takeover_s": 0.0, "failed_requests": 0}


def test_the_engines_record_of_the_death_is_the_origin_when_there_is_one() -> None:
    report = takeover_report({"target": "lb-1", "at": 100.0, "in_place_at": 102.0, "died_at": 101.0},
                             [_view(99.9, "lb-1")], {"lb-2": [(104.61, "MASTER")]},
                             [_sample(101.5, False), _sample(104.8, True)], 112.0)
    assert (report["takeover_s"], report["died_after_s"], report["fault_took_s"]) == (3.61, 1.0, 2.0)
    # Failures count from when the kill was asked for; the outage from the death.
    assert (report["client_takeover_s"], report["failed_requests"]) == (3.81, 1)
