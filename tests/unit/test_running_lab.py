"""The running lab is the lab as `up` rendered it: later edits to lab.yaml do not change what
commands act on, and they say so in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labctl import paths
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.running import attach, write_snapshot


@pytest.fixture()
def lab_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    labs = tmp_path / "labs"
    shutil.copytree(paths.labs_dir() / "lb-nginx", labs / "lb-nginx")
    monkeypatch.setenv("LABCTL_LABS_DIR", str(labs))
    monkeypatch.setenv("LABCTL_HOME", str(tmp_path / "home"))
    return labs / "lb-nginx" / "lab.yaml"


def test_attach_gives_the_lab_as_it_was_brought_up(lab_copy: Path) -> None:
    lab = load_lab("lb-nginx", parse_overrides(["app.replicas=4"]))
    write_snapshot(lab, {"app": "labctl/app:local", "nginx": "labctl/nginx:local"})
    running = attach("lb-nginx")
    assert running.lab == lab
    assert running.images == {"app": "labctl/app:local", "nginx": "labctl/nginx:local"}
    assert running.notice() is None


def test_an_edited_lab_file_is_noticed_and_not_used(lab_copy: Path) -> None:
    lab = load_lab("lb-nginx")
    write_snapshot(lab, {})
    lab_copy.write_text(lab_copy.read_text(encoding="utf-8").replace("replicas: 3", "replicas: 2"), encoding="utf-8")
    assert load_lab("lb-nginx").blocks["app"].replicas == 2
    running = attach("lb-nginx")
    assert running.lab.blocks["app"].instances() == ["app-1", "app-2", "app-3"]
    assert running.notice() == ("note: labs/lb-nginx/lab.yaml changed since 'labctl up'; acting on the lab as it "
                                "runs ('labctl up lb-nginx' applies the new file)")


def test_a_lab_rendered_before_snapshots_is_read_with_its_overrides(lab_copy: Path) -> None:
    from labctl.render import render_lab

    render_lab(load_lab("lb-nginx", parse_overrides(["app.replicas=2"])), {"app": "a", "nginx": "n"})
    assert attach("lb-nginx").lab.blocks["app"].replicas == 2
