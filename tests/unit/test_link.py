"""The link kind: two sites on two networks, a relay per forwarded service, and the lab file
problems it finds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from labctl.errors import LabConfigError
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files

IMAGES = {role: f"labctl/{role}:local" for role in ("app", "haproxy", "mysql")}


def compose(overrides: list[str] | None = None) -> dict[str, Any]:
    lab = load_lab("dr-link", parse_overrides(overrides or []))
    return dict(yaml.safe_load(render_files(lab, IMAGES)["compose.yaml"]))


def problems_of(overrides: list[str]) -> list[str]:
    with pytest.raises(LabConfigError) as info:
        load_lab("dr-link", parse_overrides(overrides))
    return [str(p) for p in info.value.problems]


def test_each_service_joins_its_own_site_and_answers_its_site_name_there() -> None:
    services = compose()["services"]
    assert services["db-2"]["networks"] == {"site-b": {"aliases": ["db-2.site-b"]}}
    assert services["db-1"]["networks"] == {"lab": {"aliases": ["db-1.site-a"]}}
    assert services["app-1"]["networks"] == {"lab": {"aliases": ["app-1.site-a"]}}


def test_a_relay_answers_its_service_name_on_the_far_site_only() -> None:
    services = compose()["services"]
    assert services["link-db-1"]["networks"] == {"lab": {}, "site-b": {"aliases": ["db-1"]}}
    assert services["link-db-2"]["networks"] == {"site-b": {}, "lab": {"aliases": ["db-2"]}}
    assert "--target=db-2.site-b" in services["link-db-2"]["command"]
    assert "--ports=3306,9200" in services["link-db-2"]["command"]


def test_the_round_trip_jitter_and_rate_reach_every_relay() -> None:
    services = compose(["link.rtt=50ms", "link.jitter=5ms", "link.rate_mbit=10"])["services"]
    for relay in ("link-db-1", "link-db-2"):
        command = services[relay]["command"]
        assert {"--rtt-ms=50", "--jitter-ms=5", "--rate-mbit=10"} <= set(command)


def test_the_second_site_is_a_network_labelled_as_the_lab() -> None:
    networks = compose()["networks"]
    assert set(networks) == {"lab", "site-b"}
    assert networks["site-b"]["labels"]["io.labctl.lab"] == "dr-link"
    assert networks["site-b"]["labels"]["io.labctl.managed"] == "true"


def test_naming_a_service_the_lab_does_not_have_is_a_problem() -> None:
    problems = problems_of(["link.site_b=[db-9]"])
    assert len(problems) == 1
    assert problems[0].endswith("link.site_b[0]: expected a service of this lab (db-1, db-2, db-3, dblb, app-1), "
                                "got 'db-9'")


def test_forwarding_a_service_the_lab_does_not_have_is_a_problem() -> None:
    problems = problems_of(["link.forward={nope: [80]}"])
    assert problems == ["--set link.forward={nope: [80]} link.forward.nope: expected a service of this lab "
                        "(db-1, db-2, db-3, dblb, app-1), got 'nope'"]


def test_site_a_must_keep_a_service_and_jitter_must_fit_in_the_round_trip() -> None:
    problems = problems_of(["link.site_b=[db-1, db-2, db-3, dblb, app-1]", "link.jitter=30ms"])
    assert any(p.endswith("link.site_b: expected at least one service to stay in site A") for p in problems)
    assert any(p.endswith("link.jitter: expected at most the round trip (rtt)") for p in problems)


def test_a_load_report_says_how_the_link_was_made() -> None:
    from labctl.console import link_line
    from labctl.kinds.link import describe

    lab = load_lab("dr-link", parse_overrides(["link.rtt=50ms", "link.rate_mbit=10"]))
    link = describe(lab.blocks["link"])
    assert link == {"block": "link", "method": "relay", "rtt_ms": 50, "jitter_ms": 0, "rate_mbit": 10,
                    "site_b": ["db-2", "db-3"]}
    assert link_line(link) == ("WAN link (link): 50 ms round trip (jitter 0 ms, 10 Mbit/s) between site A and site B "
                               "(db-2, db-3), made by a relay (TCP only)")


def test_the_doctor_says_the_link_is_a_relay_and_why() -> None:
    from labctl.doctor import Check, link_check

    check = link_check([Check("fault: netem", "unsupported", "Specified qdisc kind is unknown")])
    assert check.status == "ok" and "this kernel has no netem" in check.detail and "relay" in check.detail
