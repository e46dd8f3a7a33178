"""The dns and client blocks: validation, fixed addresses, the rendered zone and compose file,
the in-lab load command, the withdraw fault in drills, and the drill's detection time."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from labctl.errors import LabConfigError
from labctl.experiments.drill import detection, load_drill
from labctl.experiments.timeline import Sample
from labctl.lifecycle import required_roles
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files
from labctl.runtime import inlab
from tests.unit.test_lab_validation import labs_root, problems_of, write_lab  # noqa: F401

IMAGES = {"app": "labctl/app:local", "dns": "labctl/dns:local"}
REPO = Path(__file__).resolve().parents[2]


def test_lb_dns_renders_records_with_the_ttl_and_fixed_addresses() -> None:
    files = render_files(load_lab("lb-dns", parse_overrides(["dns.ttl=30", "app.replicas=4"])), IMAGES)
    zone = files["dns/db.zone"]
    assert "$TTL 30" in zone
    assert [line for line in zone.splitlines() if line.startswith("app ")] == [
        f"app IN A 10.213.130.{11 + i} ; app-{1 + i}" for i in range(4)]
    assert "rrset-order { order cyclic; };" in files["dns/named.conf"]
    assert 'zone "lab.test"' in files["dns/named.conf"]
    compose = yaml.safe_load(files["compose.yaml"])
    assert compose["services"]["app-4"]["networks"]["lab"]["ipv4_address"] == "10.213.130.14"
    assert compose["services"]["dns"]["networks"]["lab"]["ipv4_address"] == "10.213.130.2"
    client = compose["services"]["client"]
    assert client["environment"]["LABCTL_DNS_SERVER"] == "10.213.130.2"
    assert client["environment"]["LABCTL_DNS_NAME"] == "app.lab.test"
    assert client["environment"]["LABCTL_CONNECT_TIMEOUT"] == "0.5"
    assert client["image"] == "labctl/dns:local" and client["dns"] == ["10.213.130.2"]
    assert compose["networks"]["lab"]["ipam"]["config"] == [
        {"subnet": "10.213.130.0/24", "ip_range": "10.213.130.128/25"}]
    assert required_roles(load_lab("lb-dns")) == ["app", "dns"]


def test_name_and_zone_reach_the_zone_and_the_client() -> None:
    files = render_files(load_lab("lb-dns", parse_overrides(["dns.name=web", "dns.zone=shop.test"])), IMAGES)
    assert "web IN A 10.213.130.11 ; app-1" in files["dns/db.zone"]
    assert 'zone "shop.test"' in files["dns/named.conf"]
    assert "LABCTL_DNS_NAME: web.shop.test" in files["compose.yaml"]


def test_labs_without_dns_keep_dynamic_addresses() -> None:
    compose = yaml.safe_load(render_files(load_lab("lb-nginx"), {**IMAGES, "nginx": "labctl/nginx:local"})
                             ["compose.yaml"])
    assert compose["services"]["app-1"]["networks"] == ["lab"]
    assert "ipam" not in compose["networks"]["lab"]


def test_dns_and_client_references_are_checked(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "d", "title: t\nsummary: s\napp: {kind: app, replicas: 2}\n"
              "dns:\n  kind: dns\n  records: web\n  ttl: -1\n  subnet: 10.0.0.1/24\n"
              "dns2: {kind: dns, records: app}\n"
              "client: {kind: client, dns: app}\n"
              "other: {kind: client}\n")
    assert problems_of("d") == [
        "d/lab.yaml:7 dns.ttl: expected an integer from 0 to 86400, got -1",
        "d/lab.yaml:10 client.dns: expected the name of a dns block (dns2), got 'app'",
        "d/lab.yaml:11 other: missing required key 'dns'",
    ]
    assert problems_of("d", ["dns.ttl=0"]) == [
        "d/lab.yaml:6 dns.records: expected the name of an app block (app), got 'web'",
        "d/lab.yaml:8 dns.subnet: expected a network address like 10.213.130.0/24, got '10.0.0.1/24' "
        "(10.0.0.1/24 has host bits set)",
        "d/lab.yaml:9 dns2: a lab has at most one dns block (already: dns)",
        "d/lab.yaml:10 client.dns: expected the name of a dns block (dns, dns2), got 'app'",
        "d/lab.yaml:11 other: missing required key 'dns'",
    ]


def test_zone_and_subnet_shapes(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "t", "title: t\nsummary: s\napp: {kind: app, replicas: 32}\n"
              "dns: {kind: dns, records: app, subnet: 10.9.0.0/16, zone: Lab}\n")
    assert problems_of("t") == ["t/lab.yaml:4 dns.zone: expected a domain like lab.test, got 'Lab'"]
    with pytest.raises(LabConfigError):
        load_lab("t", parse_overrides(["dns.zone=lab.test", "dns.subnet=10.9.0.0/28"]))


def test_inlab_load_command_and_default_rate() -> None:
    assert inlab.effective_rate(10, None) == 150.0 and inlab.effective_rate(10, 40.0) == 40.0
    assert inlab.client_argv("labctl-lb-dns-client", 10, 150.0, 16.0, "/") == [
        "docker", "exec", "labctl-lb-dns-client", "python3", "/opt/labctl/labclient.py", "load",
        "--clients", "10", "--rate", "150", "--duration", "16", "--path", "/"]


def test_lb_dns_drills_withdraw_the_record_with_the_kill() -> None:
    steps = load_drill("lb-dns", "kill-backend").steps
    assert [(s.get("fault"), s.get("target")) for s in steps[:2]] == [("kill", "app.2"), ("withdraw", "app.2")]
    assert all(s.get("fault") != "withdraw" for s in load_drill("lb-dns", "kill-no-withdraw").steps)


def test_detection_ends_when_the_last_hit_request_of_the_first_burst_was_sent() -> None:
    start = 1000.0
    ok = [Sample(start + t / 10, 2.0, "app-1", True) for t in range(150)]
    hit = [Sample(start + 4.1, 500.0, "", False), Sample(start + 4.6, 400.0, "app-3", True),
           Sample(start + 5.3, 501.0, "", False),
           Sample(start + 9.0, 900.0, "app-1", True)]  # a later, separate spike is not detection
    faults = [{"at_s": 4.0, "reverted_at_s": 11.0}]
    # the last hit request of the burst was sent at 5.3 - 0.501
    assert detection(ok + hit, start, faults, baseline_p95=5.0) == {"detection_s": 0.8, "failed_during_fault": 2}
    assert detection(ok, start, faults, 5.0) == {"detection_s": 0.0, "failed_during_fault": 0}
    # still failing when the fault was reverted: detection is capped at the revert
    stuck = [Sample(start + 4 + t / 2, 500.0, "", False) for t in range(20)]
    assert detection(ok + stuck, start, faults, 5.0)["detection_s"] == 7.0
    assert detection(ok, start, [], 5.0) == {"detection_s": 0.0, "failed_during_fault": 0}


def test_detection_counts_slow_service_not_a_load_generator_backlog() -> None:
    start = 1000.0
    faults = [{"at_s": 4.0, "reverted_at_s": 11.0}]
    # a busy load generator sends late: late from when due, but served as fast as ever
    backlog = [Sample(start + 4 + t / 10, 800.0 + t, "app-1", True, service_ms=3.0) for t in range(30)]
    assert detection(backlog, start, faults, 5.0)["detection_s"] == 0.0
    # every request stalls (HAProxy waiting out a 1 s connect timeout on a dead server, then
    # redispatching): all of them slow, so no "slower than the others" can see it
    stalled = [Sample(start + 5.0 + t / 20, 1003.0, "app-1", True, service_ms=1003.0) for t in range(20)]
    assert detection(stalled, start, faults, 5.0)["detection_s"] == 0.95
    # closed-model users in lockstep: each wave of hit requests is one connect timeout after the last
    waves = [Sample(start + 4.0 + wave * 1.01 + 1.0, 1000.0, "app-1", True, service_ms=1000.0) for wave in range(4)]
    assert detection(waves, start, faults, 5.0)["detection_s"] == 3.03


def _labclient() -> ModuleType:
    spec = importlib.util.spec_from_file_location("labclient", REPO / "images" / "dns" / "labclient.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_client_parses_a_compressed_dns_answer() -> None:
    client = _labclient()
    question = client._encode_name("app.lab.test") + struct.pack("!HH", 1, 1)
    answers = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4) + bytes(ip)
                       for ttl, ip in ((5, (10, 0, 0, 12)), (3, (10, 0, 0, 11))))
    packet = struct.pack("!HHHHHH", 7, 0x8180, 1, 2, 0, 0) + question + answers
    assert client.parse_answer(packet, "app.lab.test") == (["10.0.0.12", "10.0.0.11"], 3)
    with pytest.raises(OSError, match="rcode 3"):
        client.parse_answer(struct.pack("!HHHHHH", 7, 0x8183, 1, 0, 0, 0) + question, "app.lab.test")
