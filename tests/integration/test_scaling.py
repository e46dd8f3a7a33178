"""`labctl scale` and `labctl sweep` on real labs."""

from __future__ import annotations

import json
from pathlib import Path

from labctl.runtime.dockerenv import docker_client
from tests.integration.conftest import Cli, lab_objects, served_by


def lb_id() -> str:
    return str(docker_client().containers.get("labctl-lb-nginx-lb").id)


def test_scale_up_and_down_without_restarting_the_rest(cli: Cli) -> None:
    cli.ok("up", "lb-nginx")
    before = lb_id()
    app1 = docker_client().containers.get("labctl-lb-nginx-app-1").id
    assert "3 -> 5 replicas" in cli.ok("scale", "lb-nginx", "app=5")
    assert sorted(set(served_by("http://127.0.0.1:8080/", 10))) == [f"app-{i}" for i in range(1, 6)]
    assert "5 -> 2 replicas" in cli.ok("scale", "lb-nginx", "app=2")
    assert sorted(set(served_by("http://127.0.0.1:8080/", 10))) == ["app-1", "app-2"]
    assert lb_id() == before and docker_client().containers.get("labctl-lb-nginx-app-1").id == app1
    names = [s["name"] for s in json.loads(cli.ok("status", "lb-nginx", "--json"))["services"]]
    assert names == ["app-1", "app-2", "lb"]


def test_scale_errors(cli: Cli) -> None:
    result = cli.run("scale", "lb-nginx", "app=2")
    assert result.returncode == 1 and "lab 'lb-nginx' is not up" in result.stderr
    assert cli.run("scale", "lb-nginx", "app=zero").returncode == 2
    cli.ok("up", "lb-nginx")
    result = cli.run("scale", "lb-nginx", "lb=2")
    assert result.returncode == 2 and "no app block 'lb'" in result.stderr


def test_sweep_writes_table_and_chart(cli: Cli) -> None:
    out = cli.ok("sweep", "scale-horizontal", "--set", "app.replicas=1,2", "--duration", "4s", "--users", "4")
    assert "sweep on scale-horizontal" in out
    [run_dir] = (cli.home / "runs" / "scale-horizontal").glob("*-sweep")
    rows = json.loads((Path(run_dir) / "sweep.json").read_text())["rows"]
    assert [row["params"] for row in rows] == [{"app.replicas": "1"}, {"app.replicas": "2"}]
    assert sorted(rows[1]["backend_share"]) == ["app-1", "app-2"]
    assert all(row["failures"] == 0 and row["rps"] > 0 for row in rows)
    assert (Path(run_dir) / "sweep.png").stat().st_size > 1000
    assert (Path(run_dir) / "sweep.csv").read_text().startswith("app.replicas,rps")
    assert lab_objects("scale-horizontal") == []  # it was down before the sweep, so down again after


def test_sweep_gives_a_lab_that_was_up_its_own_value_back(cli: Cli) -> None:
    def cpus() -> float:
        container = docker_client().containers.get("labctl-scale-vertical-app-1")
        return int(container.attrs["HostConfig"]["NanoCpus"]) / 1e9

    cli.ok("up", "scale-vertical", "--set", "app.cpus=1.5")
    out = cli.ok("sweep", "scale-vertical", "--set", "app.cpus=0.5,2", "--duration", "3s", "--users", "4")
    assert "scale-vertical is back as it was before the sweep: app.cpus=1.5" in out
    assert cpus() == 1.5  # not the sweep's last value, 2
    assert json.loads(cli.ok("status", "scale-vertical", "--json"))["state"] == "up"


def test_check_runs_a_scaling_checkpoint_and_refuses_bad_input(cli: Cli) -> None:
    down = cli.run("check", "scale-horizontal", "even-spread")
    assert down.returncode == 1 and "lab 'scale-horizontal' is down" in down.stderr
    assert not (cli.home / "runs" / "scale-horizontal").exists()
    cli.ok("up", "scale-horizontal")
    unknown = cli.run("check", "scale-horizontal", "double")
    assert unknown.returncode == 1
    assert "no checkpoint 'double' (checkpoints: more-replicas, even-spread)" in unknown.stderr
    out = cli.ok("check", "scale-horizontal", "even-spread")
    assert "PASS even-spread" in out and "load.max_backend_share in [0.45, 0.56]" in out
    assert "1 of 1 checkpoints passed; run folder: " in out
