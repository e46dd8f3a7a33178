"""`labctl sweep` without Docker: afterwards the lab is as it was before the sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labctl import lifecycle
from labctl.experiments import scaling
from labctl.experiments.load import LoadOptions, LoadResult
from labctl.model.lab import Lab
from labctl.runtime import inventory

SUMMARY = {"rps": 90.0, "latency_ms": {"p50": 1.0, "p95": 2.0}, "requests": 900, "failures": 0,
           "backend_share": {"app-1": 1.0}, "load_gen_bound": False, "run_id": "run"}


class Engine:
    """Records what the sweep asked of lifecycle; `running` says whether the lab was up."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, running: bool,
                 overrides: list[str] | None, fail_load: bool = False) -> None:
        self.calls: list[str] = []
        monkeypatch.setattr(inventory, "service_states", lambda lab: ["c"] if running else [])
        state = None if overrides is None else {"overrides": overrides, "images": {}}
        monkeypatch.setattr(scaling, "rendered_state", lambda lab: state)
        monkeypatch.setattr(lifecycle, "up", self.up)
        monkeypatch.setattr(lifecycle, "down", lambda lab: self.calls.append("down"))
        monkeypatch.setattr(scaling, "new_run_dir", lambda lab, kind: tmp_path)
        monkeypatch.setattr(scaling, "_write_sweep", lambda *args: None)
        self.fail_load = fail_load
        monkeypatch.setattr(scaling, "run_load", self.load)

    def up(self, lab: Lab, **_: Any) -> None:
        self.calls.append("up " + " ".join(lab.overrides))

    def load(self, lab: str, options: LoadOptions, progress: Any) -> LoadResult:
        if self.fail_load:
            raise KeyboardInterrupt
        return LoadResult(Path("."), SUMMARY)


def run(grid: str = "app.cpus=0.5,2") -> scaling.SweepResult:
    return scaling.sweep("scale-vertical", scaling.parse_grid((grid,)), LoadOptions(), lambda message: None)


def test_a_lab_that_was_up_gets_its_own_values_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = Engine(monkeypatch, tmp_path, running=True, overrides=[])
    result = run()
    assert engine.calls == ["up app.cpus=0.5", "up app.cpus=2", "up "]
    assert result.after == "scale-vertical is back as it was before the sweep: app.cpus=1.0"
    assert [row["params"] for row in result.rows] == [{"app.cpus": "0.5"}, {"app.cpus": "2"}]


def test_a_lab_up_with_overrides_gets_them_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = Engine(monkeypatch, tmp_path, running=True, overrides=["app.cpus=1.5", "app.workers=2"])
    result = run()
    assert engine.calls[-1] == "up app.cpus=1.5 app.workers=2"
    assert result.after == "scale-vertical is back as it was before the sweep: app.cpus=1.5"


def test_each_combination_keeps_the_other_values_the_lab_was_up_with(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    engine = Engine(monkeypatch, tmp_path, running=True, overrides=["app.cpus=1.5", "app.workers=2"])
    run()
    assert engine.calls[:2] == ["up app.workers=2 app.cpus=0.5", "up app.workers=2 app.cpus=2"]


def test_a_lab_that_was_down_is_down_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = Engine(monkeypatch, tmp_path, running=False, overrides=None)
    assert run().after == "scale-vertical is down again, as before the sweep"
    assert engine.calls[-1] == "down"


def test_an_interrupted_sweep_puts_the_lab_back_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = Engine(monkeypatch, tmp_path, running=True, overrides=["app.cpus=1.5"], fail_load=True)
    with pytest.raises(KeyboardInterrupt):
        run()
    assert engine.calls == ["up app.cpus=0.5", "up app.cpus=1.5"]


def test_a_lab_whose_own_values_are_unknown_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = Engine(monkeypatch, tmp_path, running=True, overrides=None)
    assert run().after == ("scale-vertical stays at the sweep's last combination; 'labctl up scale-vertical' "
                           "with its own --set values brings it back")
    assert engine.calls == ["up app.cpus=0.5", "up app.cpus=2"]
