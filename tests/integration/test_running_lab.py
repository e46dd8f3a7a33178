"""Commands act on the lab as it was brought up: lab.yaml edited while the lab runs (a db
node fewer) changes nothing for `db status`, `chaos` and `drill`, which each say so in one line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from labctl import paths
from tests.integration.conftest import Cli

LAB = "db-replication"
NOTICE = f"note: labs/{LAB}/lab.yaml changed since 'labctl up'; acting on the lab as it runs"
DRILL = """\
title: Kill the third node, which the edited lab file no longer has
load: {users: 2, duration: 12s}
steady_state: {max_error_rate: 0.01, max_p95_ms: 2000, window: 3s}
steps:
  - {at: 3s, fault: kill, target: db.3}
  - {at: 7s, heal: true}
expect:
  max_error_rate: 0.01
"""


@pytest.fixture(scope="module")
def edited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    root = tmp_path_factory.mktemp("running-lab")
    labs = root / "labs"
    shutil.copytree(paths.labs_dir() / LAB, labs / LAB)
    (labs / LAB / "drills" / "kill-third.yaml").write_text(DRILL, encoding="utf-8")
    cli = Cli(root / "home", {"LABCTL_LABS_DIR": str(labs)})
    try:
        cli.ok("up", LAB)
        lab_file = labs / LAB / "lab.yaml"
        lab_file.write_text(lab_file.read_text(encoding="utf-8").replace("replicas: 2", "replicas: 1"),
                            encoding="utf-8")
        yield cli
    finally:
        cli.run("down", LAB)


def test_db_status_shows_the_nodes_that_run(edited: Cli) -> None:
    result = edited.run("db", "status", LAB, "--json")
    assert result.returncode == 0, result.stderr
    assert [row["node"] for row in json.loads(result.stdout)["nodes"]] == ["db-1", "db-2", "db-3"]
    assert NOTICE in result.stderr


def test_chaos_targets_what_runs(edited: Cli) -> None:
    result = edited.run("chaos", LAB, "pause", "db.3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pause db-3" in result.stdout and NOTICE in result.stderr
    assert "pause db-3" in edited.ok("heal", LAB)


def test_drill_runs_on_what_runs(edited: Cli) -> None:
    result = edited.run("drill", LAB, "kill-third", "--json")
    assert NOTICE in result.stderr
    report = json.loads(result.stdout)
    assert [f["target"] for f in report["faults"]] == ["db-3"]
    assert report["verdict"] == "pass", json.dumps(report["expectations"])
    assert result.returncode == 0


def test_up_again_applies_the_edited_file(edited: Cli) -> None:
    edited.ok("up", LAB)
    result = edited.run("db", "status", LAB, "--json")
    assert NOTICE not in result.stderr
    assert [row["node"] for row in json.loads(result.stdout)["nodes"]] == ["db-1", "db-2"]
