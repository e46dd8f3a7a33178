"""Nginx feature switches: each reaches the config only when on, bad values get plain errors,
and the per-lab TLS certificate is made once, owner-only, and verifies."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from labctl.errors import LabConfigError
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files, render_lab
from labctl.tlscert import ensure_tls
from tests.unit.test_render import IMAGES

ALL_ON = ["lb.cache=on", "lb.gzip=on", "lb.tls=on", "lb.rate_limit=on", "lb.access=on"]
# A directive each switch adds, and nothing else puts there.
MARKERS = {
    "lb.cache=on": "proxy_cache labctl_cache;",
    "lb.gzip=on": "gzip on;",
    "lb.tls=on": "listen 443 ssl;",
    "lb.rate_limit=on": "limit_req zone=per_client burst=20 nodelay;",
    "lb.access=on": "deny all;",
}


def nginx_conf(lab: str, overrides: list[str]) -> str:
    return render_files(load_lab(lab, parse_overrides(overrides)), IMAGES)["lb/nginx.conf"]


@pytest.mark.parametrize("switch", sorted(MARKERS))
def test_each_switch_adds_its_directives_and_only_its_own(switch: str) -> None:
    off = nginx_conf("nginx-features", [])
    on = nginx_conf("nginx-features", [switch])
    assert MARKERS[switch] not in off
    assert MARKERS[switch] in on
    others = [marker for name, marker in MARKERS.items() if name != switch]
    assert not [marker for marker in others if marker in on]


def test_settings_reach_the_config() -> None:
    conf = nginx_conf("nginx-features", [*ALL_ON, "lb.cache_valid=1m", "lb.gzip_level=9",
                                         "lb.rate_limit_rate=300r/m", "lb.rate_limit_burst=0",
                                         "lb.access_rules=[deny 10.0.0.0/8, allow all]"])
    assert "proxy_cache_valid 200 1m;" in conf and "X-Cache-Status $upstream_cache_status" in conf
    assert "gzip_comp_level 9;" in conf
    assert "rate=300r/m;" in conf and "limit_req_status 429;" in conf and "burst=0 nodelay" in conf
    assert conf.index("deny 10.0.0.0/8;") < conf.index("allow all;")
    # Rate limits and access rules guard the proxied app and the static files, never the health check.
    assert conf.count("limit_req zone=per_client") == 2 and conf.count("deny 10.0.0.0/8;") == 2
    health = conf.split("location = /labctl-health {")[1].split("}")[0]
    assert "limit_req" not in health and "deny" not in health


def test_static_files_are_rendered_and_mounted() -> None:
    files = render_files(load_lab("nginx-features"), IMAGES)
    assert "lb/static/index.html" in files and len(files["lb/static/catalog.json"]) > 30000
    yaml.safe_load(files["lb/static/catalog.json"].replace("\n", " "))  # valid JSON is valid YAML flow
    lb = yaml.safe_load(files["compose.yaml"])["services"]["lb"]
    assert "./lb/static:/srv/labctl-static:ro" in lb["volumes"]
    assert lb["ports"] == ["127.0.0.1:8110:80", "127.0.0.1:8111:443"]
    off = render_files(load_lab("nginx-features", parse_overrides(["lb.static=off"])), IMAGES)
    assert not [name for name in off if "/static/" in name]
    assert "location /static/" not in off["lb/nginx.conf"]


def test_lb_nginx_has_every_feature_off() -> None:
    conf = nginx_conf("lb-nginx", [])
    assert not [marker for marker in MARKERS.values() if marker in conf]
    assert "location /static/" not in conf


def test_https_endpoint_is_an_https_url() -> None:
    assert load_lab("nginx-features").endpoint_urls()["https"] == "https://127.0.0.1:8111"


@pytest.mark.parametrize(("override", "sentence"), [
    ("lb.cache=maybe", "lb.cache: expected on or off, got 'maybe'"),
    ("lb.rate_limit_rate=10/s", "lb.rate_limit_rate: expected a rate like 10r/s or 600r/m, got '10/s'"),
    ("lb.access_rules=[permit all]",
     "lb.access_rules[0]: expected a rule like 'allow 10.0.0.0/8' or 'deny all', got 'permit all'"),
    ("lb.gzip_level=12", "lb.gzip_level: expected an integer from 1 to 9, got 12"),
    ("lb.gzip_levle=3", "lb.gzip_levle: unknown key 'gzip_levle', did you mean 'gzip_level'?"),
])
def test_bad_feature_values_get_plain_errors(override: str, sentence: str) -> None:
    with pytest.raises(LabConfigError) as info:
        load_lab("nginx-features", parse_overrides([override]))
    assert [str(p) for p in info.value.problems] == [f"--set {override} {sentence}"]


def test_tls_files_are_made_once_owner_only_and_verify(tmp_path: Path) -> None:
    lab = load_lab("nginx-features", parse_overrides(["lb.tls=on"]))
    assert not [name for name in render_files(lab, IMAGES) if "tls" in name]  # never in goldens
    render_lab(lab, IMAGES, folder=tmp_path / "lab")
    tls = tmp_path / "lab" / "lb" / "tls"
    assert stat.S_IMODE((tls / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    assert "lb/tls:/etc/nginx/tls:ro" in (tmp_path / "lab" / "compose.yaml").read_text()
    ca = x509.load_pem_x509_certificate((tls / "ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((tls / "cert.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "lb"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    before = (tls / "cert.pem").read_bytes()
    render_lab(lab, IMAGES, folder=tmp_path / "lab")
    assert (tls / "cert.pem").read_bytes() == before


def test_a_certificate_for_other_names_is_made_again(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path, "x", "lb", "127.0.0.1").cert.read_bytes()
    again = ensure_tls(tmp_path, "x", "lb", "10.1.2.3")
    assert again.cert.read_bytes() != first
    names = x509.load_pem_x509_certificate(again.cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "10.1.2.3" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
