"""Lifecycle edge cases on a real engine: decoys are never touched, bad starts change
nothing, configs are valid for the real servers, rendered folders run without labctl."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from labctl.runtime.dockerenv import docker_client
from tests.integration.conftest import Cli, lab_objects, served_by

NETTOOLS = "labctl/nettools:local"


def test_down_never_touches_a_decoy(cli: Cli) -> None:
    cli.ok("up", "lb-nginx")
    client = docker_client()
    network = "labctl-lb-nginx_lab"
    decoys = [
        client.containers.run(NETTOOLS, ["sleep", "300"], name="labctl-decoy-plain", detach=True),
        # Looks like Compose's, on the lab's own network, but labctl did not create it.
        client.containers.run(NETTOOLS, ["sleep", "300"], name="labctl-decoy-compose", detach=True,
                              network=network, labels={"com.docker.compose.project": "labctl-lb-nginx"}),
    ]
    try:
        result = cli.run("down", "lb-nginx")
        assert result.returncode == 0, result.stderr
        assert "left in place" in result.stderr and network in result.stderr
        for decoy in decoys:
            decoy.reload()
            assert decoy.status == "running", decoy.name
        assert [o for o in lab_objects("lb-nginx") if o.startswith("container")] == []
    finally:
        for decoy in decoys:
            decoy.remove(force=True)
    cli.ok("down", "lb-nginx")  # the network can go now that the decoy is gone
    assert lab_objects("lb-nginx") == []


def test_busy_port_fails_before_anything_starts(cli: Cli) -> None:
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 8080))
        held.listen()
        result = cli.run("up", "lb-nginx")
    assert result.returncode == 1
    assert "port 8080 (lb.publish.http) on 127.0.0.1 is in use" in result.stderr
    assert "--set lb.publish.http=PORT" in result.stderr
    assert lab_objects("lb-nginx") == []


def test_invalid_override_starts_nothing(cli: Cli) -> None:
    result = cli.run("up", "lb-nginx", "--set", "app.replicas=three")
    assert result.returncode == 1
    assert "app.replicas: expected an integer from 1 to 32, got 'three'" in result.stderr
    assert lab_objects("lb-nginx") == []
    assert not (cli.home / "compose" / "lb-nginx").exists()


def test_no_engine_gives_advice_not_a_traceback(cli: Cli) -> None:
    env = {**cli.env(), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run([*cli.argv(), "up", "lb-nginx"], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert "cannot connect to the Docker engine" in result.stderr and "setup-host.sh" in result.stderr
    assert "Traceback" not in result.stderr


def test_unhealthy_service_is_named_with_its_logs(cli: Cli) -> None:
    # 6 MB is too little for the app: it dies at start, and up says so instead of hanging.
    result = cli.run("up", "single-server", "--set", "app.memory=6m", "--timeout", "60")
    assert result.returncode == 1, result.stdout
    assert "app-1" in result.stderr and "labctl down single-server" in result.stderr
    cli.ok("down", "single-server")


def test_ctrl_c_during_up_leaves_nothing(cli: Cli) -> None:
    process = subprocess.Popen([*cli.argv(), "up", "lb-haproxy"], env=cli.env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not lab_objects("lb-haproxy") and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert lab_objects("lb-haproxy") == []


def test_configs_pass_the_real_servers_checks(cli: Cli) -> None:
    cli.ok("render", "lb-nginx", "--set", "lb.algorithm=least_conn", "--set", "lb.weights=[3,1,1]")
    nginx_conf = cli.home / "compose" / "lb-nginx" / "lb" / "nginx.conf"
    hosts = [f"app-{i}:127.0.0.1" for i in (1, 2, 3)]
    check(["-v", f"{nginx_conf}:/etc/nginx/nginx.conf:ro"], "labctl/nginx:local", ["nginx", "-t"], hosts)
    cli.ok("render", "lb-haproxy", "--set", "lb.mode=tcp")
    cfg = cli.home / "compose" / "lb-haproxy" / "lb" / "haproxy.cfg"
    check(["-v", f"{cfg}:/usr/local/etc/haproxy/haproxy.cfg:ro"], "labctl/haproxy:local",
          ["haproxy", "-c", "-f", "/usr/local/etc/haproxy/haproxy.cfg"], hosts)
    for lab in ("lb-nginx", "lb-haproxy", "single-server"):
        cli.ok("render", lab)
        compose_file = cli.home / "compose" / lab / "compose.yaml"
        result = subprocess.run(["docker", "compose", "-f", str(compose_file), "config", "-q"],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def check(mounts: list[str], image: str, command: list[str], hosts: list[str]) -> None:
    add_hosts = [x for h in hosts for x in ("--add-host", h)]
    result = subprocess.run(["docker", "run", "--rm", "--network", "none", *add_hosts, *mounts, image, *command],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_folder_runs_with_plain_compose(cli: Cli) -> None:
    cli.ok("render", "lb-haproxy")
    compose_file = cli.home / "compose" / "lb-haproxy" / "compose.yaml"
    subprocess.run(["docker", "compose", "-f", str(compose_file), "up", "-d", "--wait"], check=True,
                   capture_output=True, cwd=Path(os.sep))
    assert sorted(set(served_by("http://127.0.0.1:8081/", 9))) == ["app-1", "app-2", "app-3"]
    cli.ok("down", "lb-haproxy")
    assert lab_objects("lb-haproxy") == []


def test_logs_of_one_service_and_unknown_service(cli: Cli) -> None:
    cli.ok("up", "single-server")
    assert "listening on :8000" in cli.ok("logs", "single-server", "app-1")
    result = cli.run("logs", "single-server", "app-9")
    assert result.returncode == 1 and "no service 'app-9'" in result.stderr
