"""The local images for real: the sample app's endpoints and switches, the servers' versions,
and MySQL and MariaDB starting with the official images' environment contract."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl import images, paths
from labctl.runtime.dockerenv import docker_client

LABELS = {"io.labctl.test": "1"}
DATA = Path(__file__).parent / "data"


@pytest.fixture()
def containers() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for container in started:
        container.remove(force=True)


def start(started: list[Any], role: str, **kwargs: Any) -> Any:
    container = docker_client().containers.run(images.image_ref(role, "local"), detach=True, labels=LABELS, **kwargs)
    started.append(container)
    return container


def wait_for(predicate: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def request(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], dict[str, Any]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def answers(port: int) -> bool:
    try:
        return request(port, "/health")[0] in (200, 503)
    except OSError:
        return False


def test_build_skips_up_to_date_images() -> None:
    results = images.build_images("local", ["app", "nettools"])
    assert [r.action for r in results] == ["up to date", "up to date", "up to date"]


def test_sample_app_endpoints_and_switches(containers: list[Any]) -> None:
    environment = {"INSTANCE": "app-7", "WORKERS": "3"}
    start(containers, "app", environment=environment, ports={"8000/tcp": ("127.0.0.1", 18007)})
    wait_for(lambda: answers(18007))
    status, headers, body = request(18007, "/")
    assert status == 200 and headers["X-Served-By"] == "app-7" and body["served_by"] == "app-7"

    began = time.perf_counter()
    request(18007, "/sleep?ms=300")
    assert 0.28 < time.perf_counter() - began < 1.5
    began = time.perf_counter()
    request(18007, "/work?ms=200")
    assert 0.18 < time.perf_counter() - began < 2.0

    request(18007, "/_chaos/fail?percent=100", "POST")
    # Each request may land on any of the 3 worker processes: all must see the switch.
    assert {request(18007, "/")[0] for _ in range(12)} == {500}
    request(18007, "/_chaos/slow?ms=200", "POST")
    request(18007, "/_chaos/fail?percent=0", "POST")
    began = time.perf_counter()
    assert request(18007, "/")[0] == 200 and time.perf_counter() - began >= 0.19
    request(18007, "/_chaos/unhealthy", "POST")
    assert request(18007, "/health")[0] == 503
    request(18007, "/_chaos/reset", "POST")
    assert request(18007, "/health")[0] == 200
    assert request(18007, "/_chaos")[2]["chaos"] == {"slow_ms": 0, "fail_percent": 0, "unhealthy": False}


def test_app_stops_promptly(containers: list[Any]) -> None:
    container = start(containers, "app")
    time.sleep(1)
    began = time.perf_counter()
    container.stop(timeout=10)
    assert time.perf_counter() - began < 3


@pytest.mark.parametrize(("role", "command", "expected"), [
    ("nginx", ["nginx", "-v"], "nginx/1."),
    ("haproxy", ["haproxy", "-v"], "HAProxy version 3."),
])
def test_server_versions(role: str, command: list[str], expected: str) -> None:
    output = docker_client().containers.run(images.image_ref(role, "local"), command, remove=True,
                                            stdout=True, stderr=True, labels=LABELS)
    assert expected in bytes(output).decode()


@pytest.mark.parametrize("role", ["mysql", "mariadb"])
def test_database_images_follow_the_official_contract(containers: list[Any], role: str) -> None:
    container = start(containers, role, environment={"MYSQL_ROOT_PASSWORD": "pw", "MYSQL_DATABASE": "lab",
                                                     "MYSQL_USER": "labuser", "MYSQL_PASSWORD": "userpw"})
    admin = "mysqladmin" if role == "mysql" else "mariadb-admin"
    wait_for(lambda: container.exec_run([admin, "-h127.0.0.1", "-uroot", "-ppw", "ping"]).exit_code == 0, 90)
    client = "mysql" if role == "mysql" else "mariadb"
    query = "SELECT VERSION(); SHOW DATABASES LIKE 'lab'"
    result = container.exec_run([client, "-h127.0.0.1", "-ulabuser", "-puserpw", "-N", "-e", query], demux=True)
    stdout, stderr = result.output
    assert result.exit_code == 0, stderr
    version, database = stdout.decode().splitlines()[:2]
    assert database == "lab"
    assert version.startswith("9.") if role == "mysql" else "MariaDB" in version


@pytest.fixture()
def upstream_recipe_on_standin() -> Iterator[str]:
    """Dockerfile.mysql.upstream built on a stand-in for mysql:8.4 (no registry here)."""
    client = docker_client()
    images.build_images("local", ["mysql"])
    standin, recipe = "labctl-test/mysql-official-standin:latest", "labctl-test/mysql-upstream-recipe:latest"
    client.images.build(path=str(DATA), dockerfile="Dockerfile.official-standin", tag=standin, rm=True,
                        labels=LABELS)
    client.images.build(path=str(paths.images_dir() / "db"), dockerfile="Dockerfile.mysql.upstream",
                        tag=recipe, rm=True, labels=LABELS, buildargs={"BASE": standin})
    yield recipe
    for ref in (recipe, standin):
        client.images.remove(ref, force=True)


def agent_answers(container: Any, path: str) -> str:
    probe = f"exec 3<>/dev/tcp/127.0.0.1/9200 && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
    result = container.exec_run(["bash", "-c", probe])
    lines = result.output.decode(errors="replace").splitlines()
    return f"{lines[0].split(' ', 1)[1]} {lines[-1]}" if result.exit_code == 0 and lines else "no answer"


def test_upstream_db_recipe_starts_the_agent_and_keeps_the_node_read_only(
        containers: list[Any], upstream_recipe_on_standin: str) -> None:
    config = DATA / "read-only-node.cnf"
    container = docker_client().containers.run(
        upstream_recipe_on_standin, detach=True, labels=LABELS, init=True,
        environment={"MYSQL_ROOT_PASSWORD": "pw", "MYSQL_DATABASE": "lab"},
        volumes={str(config): {"bind": "/etc/mysql/conf.d/labctl.cnf", "mode": "ro"}})
    containers.append(container)
    wait_for(lambda: agent_answers(container, "/alive").startswith("200"), 90)
    # The first run wrote its users through the override; the real server reads the node's
    # own config again: read-only, super_read_only too, so HAProxy's writer check fails.
    assert agent_answers(container, "/writable") == "503 Service Unavailable read_only=1"
    query = "SELECT @@global.read_only, @@global.super_read_only; SHOW DATABASES LIKE 'lab'"
    root = ["mysql", "-h127.0.0.1", "-uroot", "-N", "-e"]
    result = container.exec_run([*root, query], environment={"MYSQL_PWD": "pw"}, demux=True)
    assert result.exit_code == 0, result.output
    assert result.output[0].decode().split() == ["1", "1", "lab"]
    assert container.exec_run(["test", "-e", "/etc/mysql/conf.d/zz-labctl-init.cnf"]).exit_code == 1
    container.exec_run([*root, "SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF"],
                       environment={"MYSQL_PWD": "pw"})
    wait_for(lambda: agent_answers(container, "/writable").startswith("200"), 5)
