"""The haproxy block's L7-only features (routes, response headers) and DNS discovery:
validation errors, and what reaches haproxy.cfg and compose.yaml."""

from __future__ import annotations

import pytest
import yaml

from labctl.errors import LabConfigError
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files
from tests.unit.test_render import IMAGES


def problems_of(name: str, overrides: list[str]) -> list[str]:
    with pytest.raises(LabConfigError) as info:
        load_lab(name, parse_overrides(overrides))
    return [str(p) for p in info.value.problems]


def test_tcp_mode_cannot_route_by_path_or_add_headers() -> None:
    found = problems_of("lb-l4-vs-l7", ["l4.routes=[{path: /reports, backends: reports}]",
                                         "l4.response_headers={X-Lb: haproxy-l4}"])
    assert found == [
        "--set l4.routes=[{path: /reports, backends: reports}] l4.routes: mode tcp cannot route by path: "
        "it never reads the HTTP request (use mode: http)",
        "--set l4.response_headers={X-Lb: haproxy-l4} l4.response_headers: mode tcp cannot add headers: "
        "it never reads the HTTP request (use mode: http)",
    ]
    assert problems_of("lb-l4-vs-l7", ["l7.mode=tcp"])[0].endswith(
        "l7.routes: mode tcp cannot route by path: it never reads the HTTP request (use mode: http)")


def test_route_and_header_values_are_checked() -> None:
    found = problems_of("lb-l4-vs-l7", ["l7.routes=[{path: reports, backends: nowhere}]",
                                         "l7.response_headers={X-Lb: two words}"])
    assert any("l7.routes[0].path: expected a path prefix like /reports, got 'reports'" in p for p in found), found
    assert any("l7.response_headers.X-Lb: expected a header value without spaces or quotes" in p for p in found)
    found = problems_of("lb-l4-vs-l7", ["l7.routes=[{path: /x, backends: nowhere}]"])
    assert found == ["--set l7.routes=[{path: /x, backends: nowhere}] l7.routes[0].backends: "
                     "expected the name of an app block (app, reports), got 'nowhere'"]


def test_l7_config_routes_by_path_and_sets_a_header_and_l4_has_neither() -> None:
    files = render_files(load_lab("lb-l4-vs-l7"), IMAGES)
    l7, l4 = files["l7/haproxy.cfg"], files["l4/haproxy.cfg"]
    assert "use_backend reports if { path_beg /reports }" in l7
    assert "http-response set-header X-Lb haproxy-l7" in l7
    assert "backend reports" in l7 and "server reports-1 reports-1:8000" in l7
    assert "mode tcp" in l4 and "use_backend" not in l4 and "http-response" not in l4
    assert "option httpchk" not in l4  # tcp mode checks by connecting
    compose = yaml.safe_load(files["compose.yaml"])
    assert compose["services"]["l4"]["ports"] == ["127.0.0.1:8100:8080", "127.0.0.1:8405:8404"]
    assert compose["services"]["l7"]["ports"] == ["127.0.0.1:8101:8080"]


def test_the_default_endpoint_is_the_l4_one() -> None:
    # `labctl load`, drills and `labctl compare` use the `http` endpoint unless told otherwise.
    assert load_lab("lb-l4-vs-l7").endpoint_urls() == {
        "http": "http://127.0.0.1:8100", "stats": "http://127.0.0.1:8405/stats", "l7": "http://127.0.0.1:8101"}


def test_discovery_config_does_not_depend_on_the_replica_count() -> None:
    three = render_files(load_lab("lb-dynamic"), IMAGES)
    six = render_files(load_lab("lb-dynamic", parse_overrides(["app.replicas=6"])), IMAGES)
    assert three["lb/haproxy.cfg"] == six["lb/haproxy.cfg"]
    assert "server-template app-slot 10 app:8000" in three["lb/haproxy.cfg"]
    assert "server app-" not in three["lb/haproxy.cfg"]
    services = yaml.safe_load(six["compose.yaml"])["services"]
    assert services["lb"] == yaml.safe_load(three["compose.yaml"])["services"]["lb"]
    for index in range(1, 7):
        assert services[f"app-{index}"]["networks"] == {"lab": {"aliases": ["app"]}}


def test_no_alias_without_discovery() -> None:
    services = yaml.safe_load(render_files(load_lab("lb-haproxy"), IMAGES)["compose.yaml"])["services"]
    assert services["app-1"]["networks"] == ["lab"]


def test_discovery_problems() -> None:
    [found] = problems_of("lb-dynamic", ["app.replicas=12"])
    assert found.endswith("lab.yaml:21 lb.discovery.slots: 10 slots cannot hold app's 12 replicas; raise slots")
    assert problems_of("lb-dynamic", ["lb.weights=[1,2,3]"]) == [
        "--set lb.weights=[1,2,3] lb.weights: weights need one server line per replica; "
        "with discovery the servers come from DNS"]
    assert problems_of("lb-dynamic", ["lb.discovery={}"]) == [
        "--set lb.discovery={} lb.discovery: missing required key 'slots'"]


def test_a_mysql_router_has_no_http_features() -> None:
    found = problems_of("db-failover", ["dblb.response_headers={X-Lb: db}", "dblb.discovery={slots: 4}"])
    assert len(found) == 2
    assert found[0].endswith(" dblb.response_headers: a MySQL router cannot add headers: it speaks TCP, not HTTP")
    assert found[1].endswith(" dblb.discovery: discovery finds app replicas; a db block has fixed nodes")
