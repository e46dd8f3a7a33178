"""What the CLI imports before any command runs: `labctl --help` and `labctl list` must not pay
for Docker, Jinja, charts, the MySQL connector or Locust (structural, not timed: bench/startup.py
times it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ["docker", "matplotlib", "jinja2", "jsonschema", "rich.markdown", "mysql.connector", "locust"]


def imported_after(code: str) -> list[str]:
    """The HEAVY modules in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_cli_imports_nothing_heavy() -> None:
    assert imported_after("import labctl.cli") == []


def test_help_imports_nothing_heavy() -> None:
    code = "from click.testing import CliRunner\nfrom labctl.cli import main\n" \
           "assert CliRunner().invoke(main, ['--help']).exit_code == 0"
    assert imported_after(code) == []


def test_list_imports_none_of_them() -> None:
    # list reads each lab file without validating it (validate does that), so no jsonschema.
    code = "from click.testing import CliRunner\nfrom labctl.cli import main\n" \
           "assert CliRunner().invoke(main, ['list']).exit_code == 0"
    assert imported_after(code) == []


def test_list_shows_the_labs_beside_one_that_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from labctl.cli import main

    for name, text in (("good", "title: Good\nsummary: s\napp: {kind: app, replicas: 2}\n"),
                       ("broken", "title: [unclosed\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lab.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("LABCTL_LABS_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0, result.output
    assert "app (app x2)" in result.output
    assert "broken" in result.output and "cannot be read: " in result.output
