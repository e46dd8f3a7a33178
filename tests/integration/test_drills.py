"""Drills on real labs: every shipped drill's verdict, and fail / aborted verdicts that heal."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from labctl.runtime.dockerenv import docker_client
from tests.integration.conftest import REPO, Cli

SHIPPED = [("lb-nginx", "kill-backend"), ("lb-nginx", "pause-backend"), ("lb-nginx", "slow-backend"),
           ("lb-haproxy", "kill-backend"), ("lb-haproxy", "flapping-backend")]


@pytest.mark.parametrize(("lab", "name"), SHIPPED)
def test_shipped_drill_passes(cli: Cli, lab: str, name: str) -> None:
    cli.ok("up", lab)
    report = json.loads(cli.ok("drill", lab, name, "--json"))
    assert report["verdict"] == "pass", report
    assert report["failures"] == 0 and report["requests"] > 500
    for key in ("expectations", "faults", "error_window_s", "recovery_s", "drill", "lab"):
        assert key in report
    assert all(f["reverted_at_s"] is not None for f in report["faults"])
    run_dirs = list((cli.home / "runs" / lab).glob(f"*-drill-{name}"))
    assert len(run_dirs) == 1
    for file in ("drill.json", "report.md", "drill.png"):
        assert (run_dirs[0] / file).is_file()
    assert cli.active_faults(lab) == []
    if (lab, name) == ("lb-haproxy", "kill-backend"):
        # Two failed health checks, each waiting out its timeout on the killed container: traffic
        # kept going to it for a second or more, though every request was retried elsewhere.
        # The upper bound is the fault's 7 s plus one 2 s burst gap, not a speed target: on two
        # shared cores the surviving backends can stay slow until the heal (7.35 s seen in CI).
        assert 0.5 <= report["detection_s"] <= 9.0, report["detection_s"]
        # No request failed, yet the service stalled while the checks noticed: ok requests/s fell
        # far under half the steady rate. The degraded window says so, in drill.json and report.md.
        assert report["error_window_s"] == 0.0 and report["degraded_s"] >= 1.0, report["degraded"]
        assert report["degraded"]["steady_rps"] > 100 and report["degraded"]["spans"], report["degraded"]
        markdown = (run_dirs[0] / "report.md").read_text()
        assert f"- degraded window: {report['degraded_s']} s (at " in markdown, markdown


@pytest.fixture()
def drill_lab(cli: Cli, tmp_path: Path) -> Cli:
    labs = tmp_path / "labs"
    shutil.copytree(REPO / "labs" / "single-server", labs / "single-server")
    drills = labs / "single-server" / "drills"
    drills.mkdir(exist_ok=True)
    (drills / "kill-only-server.yaml").write_text(
        "title: kill the only server\nload: {users: 4, duration: 8s}\n"
        "steady_state: {max_error_rate: 0.01, max_p95_ms: 2000, window: 2s}\n"
        "steps:\n  - {at: 3s, fault: kill, target: app}\nexpect: {max_failed_requests: 0}\n")
    cli.extra_env["LABCTL_LABS_DIR"] = str(labs)
    cli.ok("up", "single-server")
    return cli


def test_failing_drill_still_heals(drill_lab: Cli) -> None:
    result = drill_lab.run("drill", "single-server", "kill-only-server", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "fail" and report["failures"] > 0
    assert report["error_window_s"] > 0 and report["expectations"][0]["ok"] is False
    assert docker_client().containers.get("labctl-single-server-app-1").status == "running"


def _app_fails(percent: int) -> None:
    # Straight into the app, not through `labctl chaos`: an outage labctl did not cause.
    script = ("import urllib.request; urllib.request.urlopen(urllib.request.Request("
              f"'http://127.0.0.1:8000/_chaos/fail?percent={percent}', method='POST'), timeout=5).read()")
    result = docker_client().containers.get("labctl-single-server-app-1").exec_run(["python3", "-c", script])
    assert result.exit_code == 0, result.output


def test_drill_aborts_when_steady_state_does_not_hold(drill_lab: Cli) -> None:
    _app_fails(100)
    try:
        result = drill_lab.run("drill", "single-server", "kill-only-server", "--json")
    finally:
        _app_fails(0)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "aborted" and report["faults"] == []
    assert docker_client().containers.get("labctl-single-server-app-1").status == "running"


def test_drill_refuses_at_once_while_an_earlier_fault_is_active(drill_lab: Cli) -> None:
    drill_lab.ok("chaos", "single-server", "pause", "app")
    started = time.monotonic()
    result = drill_lab.run("drill", "single-server", "kill-only-server")
    seconds = time.monotonic() - started
    assert result.returncode == 1 and seconds < 10, (seconds, result.stdout, result.stderr)
    assert "still has 1 fault(s) from an earlier 'labctl chaos': pause app-1" in result.stderr, result.stderr
    assert "'labctl heal single-server'" in result.stderr and "Traceback" not in result.stderr
    assert list((drill_lab.home / "runs" / "single-server").glob("*drill*")) == []
    assert docker_client().containers.get("labctl-single-server-app-1").status == "paused"  # left as it was
    drill_lab.ok("heal", "single-server")
