"""Rendering: golden files for every shipped lab, and nothing written for a bad lab."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from labctl.errors import LabConfigError
from labctl.lifecycle import required_roles
from labctl.model.lab import list_lab_names, load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files, render_lab

GOLDEN = Path(__file__).parent / "golden"
IMAGES = {"app": "labctl/app:local", "nginx": "labctl/nginx:local", "haproxy": "labctl/haproxy:local"}


@pytest.mark.parametrize("name", list_lab_names())
def test_rendered_files_match_golden(name: str) -> None:
    lab = load_lab(name)
    # Roles beyond the three every golden was made with (dns, ...) get their local image.
    images = {**IMAGES, **{r: f"labctl/{r}:local" for r in required_roles(lab) if r not in IMAGES}}
    files = render_files(lab, images)
    for relative, text in files.items():
        golden = GOLDEN / name / relative
        if os.environ.get("UPDATE_GOLDEN") == "1":
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text, encoding="utf-8")
        assert golden.is_file(), f"no golden file {golden}; run with UPDATE_GOLDEN=1 and review it"
        assert text == golden.read_text(encoding="utf-8"), f"{name}/{relative} differs from its golden file"


def test_compose_labels_every_service_and_network() -> None:
    compose = yaml.safe_load(render_files(load_lab("lb-haproxy"), IMAGES)["compose.yaml"])
    for name, service in compose["services"].items():
        labels = service["labels"]
        assert labels["io.labctl.lab"] == "lb-haproxy" and labels["io.labctl.managed"] == "true", name
        assert labels["io.labctl.instance"] == name
    assert compose["networks"]["lab"]["labels"]["io.labctl.lab"] == "lb-haproxy"


def test_ports_bind_to_loopback_unless_asked() -> None:
    compose = yaml.safe_load(render_files(load_lab("lb-haproxy"), IMAGES)["compose.yaml"])
    assert compose["services"]["lb"]["ports"] == ["127.0.0.1:8081:8080", "127.0.0.1:8404:8404"]
    wide = load_lab("lb-haproxy", parse_overrides(["bind=0.0.0.0"]))
    compose = yaml.safe_load(render_files(wide, IMAGES)["compose.yaml"])
    assert compose["services"]["lb"]["ports"][0] == "0.0.0.0:8081:8080"


def test_algorithms_and_weights_reach_the_configs() -> None:
    lab = load_lab("lb-nginx", parse_overrides(["lb.algorithm=least_conn", "lb.weights=[3,1,1]"]))
    conf = render_files(lab, IMAGES)["lb/nginx.conf"]
    assert "least_conn;" in conf
    assert "server app-1:8000 weight=3" in conf and "server app-3:8000 weight=1" in conf
    lab = load_lab("lb-haproxy", parse_overrides(["lb.algorithm=ip_hash", "app.replicas=4"]))
    cfg = render_files(lab, IMAGES)["lb/haproxy.cfg"]
    assert "balance source" in cfg and "server app-4 app-4:8000" in cfg


def test_render_writes_compose_and_configs(tmp_path: Path) -> None:
    rendered = render_lab(load_lab("lb-nginx"), IMAGES, folder=tmp_path / "lb-nginx")
    assert rendered.compose_file.read_text(encoding="utf-8").startswith("# Rendered by labctl")
    assert (tmp_path / "lb-nginx" / "lb" / "nginx.conf").is_file()
    assert sorted(p.name for p in (tmp_path / "lb-nginx").iterdir()) == ["compose.yaml", "labctl-lab.json", "lb"]


def test_invalid_lab_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_HOME", str(tmp_path))
    from labctl.cli import main

    result = main.main(["render", "lb-nginx", "--set", "app.replicas=0"], standalone_mode=False)
    assert result == 1
    assert not (tmp_path / "compose").exists()


def test_invalid_override_raises_before_rendering() -> None:
    with pytest.raises(LabConfigError):
        load_lab("lb-nginx", parse_overrides(["app.replicas=0"]))
