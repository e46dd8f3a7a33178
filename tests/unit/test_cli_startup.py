"""What the CLI imports before any command runs: `labctl --help` and `labctl list` must not pay
for Docker, Jinja, charts, the MySQL connector or Locust (structural, not timed: bench/startup.py
times it)."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_list_imports_only_the_schema_validator() -> None:
    # list validates every lab, so jsonschema is the one heavy import it needs.
    code = "from click.testing import CliRunner\nfrom labctl.cli import main\n" \
           "assert CliRunner().invoke(main, ['list']).exit_code == 0"
    assert imported_after(code) == ["jsonschema"]
