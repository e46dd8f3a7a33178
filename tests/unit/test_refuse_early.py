"""load, drill and chaos check their own arguments and the drill file before they look at the
lab, and a command that fails before doing anything leaves no run folder behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from labctl import lifecycle
from labctl.cli import main
from labctl.durations import parse_duration
from labctl.errors import LabConfigError
from labctl.experiments import chaos
from labctl.experiments.drill import load_drill
from labctl.runtime import inventory

LAB = "title: t\nsummary: s\napp: {kind: app, replicas: 2}\nlb: {kind: nginx, backends: app, publish: {http: 18080}}\n"
DRILL = "title: d\nload: {duration: 10s}\nsteps:\n  - {at: 2s, fault: kill, target: app.1}\n"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    labs = tmp_path / "labs"
    (labs / "x" / "drills").mkdir(parents=True)
    (labs / "x" / "lab.yaml").write_text(LAB, encoding="utf-8")
    (labs / "x" / "drills" / "kill.yaml").write_text(DRILL, encoding="utf-8")
    monkeypatch.setenv("LABCTL_LABS_DIR", str(labs))
    monkeypatch.setenv("LABCTL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def no_docker(*_: Any, **__: Any) -> Any:
    raise AssertionError("looked at the lab before checking the arguments")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output.strip()


@pytest.mark.parametrize(("args", "message"), [
    (["load", "x", "--users", "-5"], "--users expects a number >= 1, got -5"),
    (["load", "x", "--duration", "0s", "--rate", "-1", "--path", "x"], "--rate expects requests per second > 0, "
     "got -1.0; --duration expects a time > 0, got 0s; --path expects a path that starts with /, got 'x'"),
    (["load", "x", "--spawn-rate", "0"], "--spawn-rate expects users per second > 0, got 0.0"),
    (["load", "x", "--locustfile", "nope.py"], "--locustfile nope.py: no such file"),
    (["load", "x", "--rate", "10", "--locustfile", "nope.py"],
     "--rate uses labctl's own open-model user; it cannot be combined with --locustfile"),
    (["chaos", "x", "latency", "app", "--ms", "-5"], "--ms: expected milliseconds from 0 to 600000, got -5"),
    (["chaos", "x", "kill", "app", "--percent", "5"], "--percent: kill takes no percent (loss and fail do)"),
    (["chaos", "x", "loss", "app", "--percent", "500"], "--percent: expected a percentage from 0 to 100, got 500.0"),
    (["chaos", "x", "bandwidth", "app", "--rate", "fast"],
     "--rate: expected a rate like 1mbit, 500kbit or 2mbps, got 'fast'"),
    (["chaos", "x", "pause", "app", "--duration", "0s"],
     "--duration expects a time > 0, got '0s' (leave it out to keep the fault)"),
])
def test_arguments_are_checked_before_the_lab(home: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
                                              message: str) -> None:
    for module, name in ((lifecycle, "status"), (inventory, "service_states"), (chaos, "local_runtime")):
        monkeypatch.setattr(module, name, no_docker)
    assert invoke(*args) == (2, f"error: {message}")
    assert not home.exists()


def test_load_and_drill_on_an_unknown_lab(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "status", no_docker)
    known = f"no lab named 'nope' in {home.parent / 'labs'} (labs: x)"
    assert invoke("load", "nope") == (1, f"error: {known}")
    assert invoke("drill", "nope", "kill") == (1, f"error: {known}")
    assert invoke("chaos", "nope", "kill", "app") == (1, f"error: {known}")
    assert not home.exists()


def test_a_down_lab_leaves_no_run_folder(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "status", lambda lab: [lifecycle.LabStatus(lab, f"labctl-{lab}", [], {})])
    monkeypatch.setattr(inventory, "service_states", lambda lab: [])
    assert invoke("load", "x") == (1, "error: lab 'x' is down; start it with 'labctl up x' (see 'labctl status x')")
    assert invoke("drill", "x", "kill") == (1, "error: lab 'x' is not up; start it with 'labctl up x'")
    assert not home.exists()


def test_drill_step_parameters_are_checked_in_the_file(home: Path) -> None:
    (home.parent / "labs" / "x" / "drills" / "odd.yaml").write_text(
        "title: odd\nload: {duration: 10s}\nsteps:\n  - {at: 2s, fault: kill, target: app, ms: 5}\n"
        "  - {at: 3s, heal: true, percent: 5}\n  - {at: 500ms, fault: loss, target: app, percent: 500}\n",
        encoding="utf-8")
    with pytest.raises(LabConfigError) as info:
        load_drill("x", "odd")
    assert [str(p) for p in info.value.problems] == [
        "labs/x/drills/odd.yaml:4 steps[0].ms: kill takes no ms (latency and slow do)",
        "labs/x/drills/odd.yaml:5 steps[1].percent: heal takes no percent (loss and fail do)",
        "labs/x/drills/odd.yaml:6 steps[2].percent: expected a percentage from 0 to 100, got 500",
    ]


def test_a_drill_file_load_path_is_a_path(home: Path) -> None:
    (home.parent / "labs" / "x" / "drills" / "path.yaml").write_text(
        "title: p\nload: {duration: 10s, path: api}\nsteps:\n  - {at: 2s, heal: true}\n", encoding="utf-8")
    with pytest.raises(LabConfigError) as info:
        load_drill("x", "path")
    assert str(info.value) == "labs/x/drills/path.yaml:2 load.path: expected a path like / or /api/items, got 'api'"


def test_durations_in_milliseconds() -> None:
    # The drill schema allows 500ms; parsing it used to fail as a usage error.
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1m30s") == 90.0
