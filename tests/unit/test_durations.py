"""Durations, parsed in one place (labctl/durations.py): values, and the exact error texts of
options, lab files and drill files."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.durations import duration_ms, parse_duration
from labctl.errors import LabConfigError, LabctlError, UsageError
from labctl.experiments.drill import load_drill


@pytest.mark.parametrize(("text", "seconds"), [
    ("60s", 60), ("2m", 120), ("1m30s", 90), ("45", 45), ("1.5s", 1.5), ("2h", 7200), ("500ms", 0.5),
    ("1m500ms", 60.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "ms", "5x", "-1s"])
def test_an_option_that_is_no_duration(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_duration(text)
    assert str(info.value) == f"expected a duration like 30s, 2m or 1m30s, got {text!r}"


def test_duration_ms_reads_what_lab_files_write() -> None:
    assert [duration_ms(t) for t in ("200ms", "5s", "1m", "2000ms")] == [200, 5000, 60000, 2000]
    with pytest.raises(LabctlError) as info:
        duration_ms("soon")
    assert str(info.value) == "expected a duration like 200ms, 5s or 1m, got 'soon'"


def write_drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: str) -> None:
    (tmp_path / "x" / "drills").mkdir(parents=True)
    (tmp_path / "x" / "lab.yaml").write_text("title: t\nsummary: s\napp: {kind: app}\n")
    (tmp_path / "x" / "drills" / "d.yaml").write_text(f"title: d\nload: {{duration: 10s}}\nsteps:\n{steps}")
    monkeypatch.setenv("LABCTL_LABS_DIR", str(tmp_path))


def test_a_drill_file_duration_error_names_500ms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_drill(tmp_path, monkeypatch, "  - {at: 2 s, heal: true}\n")
    with pytest.raises(LabConfigError) as info:
        load_drill("x", "d")
    assert [str(p) for p in info.value.problems] == [
        "labs/x/drills/d.yaml:4 steps[0].at: expected a duration like 500ms, 5s or 1m, got '2 s'"]


def test_a_drill_step_at_500ms_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The schema always allowed 500ms; the parser behind it used to refuse it.
    write_drill(tmp_path, monkeypatch, "  - {at: 500ms, heal: true}\n")
    assert load_drill("x", "d").steps == [{"at": "500ms", "heal": True}]
