"""`labctl load` against a real lab with real Locust."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.integration.conftest import Cli


def test_load_spreads_evenly_with_no_failures(cli: Cli) -> None:
    cli.ok("up", "lb-nginx")
    summary = json.loads(cli.ok("load", "lb-nginx", "--duration", "6s", "--users", "10", "--json"))
    assert summary["failures"] == 0 and summary["requests"] > 100
    assert sorted(summary["backends"]) == ["app-1", "app-2", "app-3"]
    for share in summary["backend_share"].values():
        assert abs(share - 1 / 3) < 0.05
    for key in ("lab", "run_id", "duration_s", "rps", "latency_ms", "load_gen_cpu", "load_gen_bound"):
        assert key in summary
    run_dir = cli.home / "runs" / "lb-nginx" / summary["run_id"]
    for name in ("summary.json", "timeline.csv", "timeline.png", "locust-report.html"):
        assert (run_dir / name).is_file(), name
    with open(run_dir / "timeline.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 5 and {"app-1", "app-2", "app-3", "p95_ms"} <= set(rows[0])
    assert sum(int(r["requests"]) for r in rows) == summary["requests"]


def test_open_model_holds_the_rate(cli: Cli) -> None:
    cli.ok("up", "lb-nginx")
    summary = json.loads(cli.ok("load", "lb-nginx", "--duration", "6s", "--rate", "100", "--users", "10", "--json"))
    assert summary["model"] == "open" and summary["failures"] == 0
    assert 85 <= summary["rps"] <= 115


def test_load_on_a_lab_that_is_down(cli: Cli) -> None:
    cli.run("down", "lb-nginx")
    result = cli.run("load", "lb-nginx", "--duration", "3s")
    assert result.returncode == 1
    assert "lab 'lb-nginx' is down; start it with 'labctl up lb-nginx'" in result.stderr


def test_killed_locust_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    cli.ok("up", "single-server")
    suicidal = tmp_path / "locustfile.py"
    suicidal.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", encoding="utf-8")
    result = cli.run("load", "single-server", "--duration", "3s", "--locustfile", str(suicidal))
    assert result.returncode == 1
    assert "load generator was killed by signal 9 without recording a request" in result.stderr
