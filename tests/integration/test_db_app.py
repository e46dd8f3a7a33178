"""The sample app's DB endpoints against real MySQL (Debian's 9.7) and MariaDB containers:
write, read, duplicate, and outcomes that tell the truth when the database fails (stopped:
failed; paused before COMMIT: failed and absent; COMMIT that never answers: unknown, and
the row does land). Ends with a Locust run of the ledger user through a crash of the
database, classified against what the database kept. Everything is labelled
io.labctl.lab=test-db-app-<flavor> and removed by that label in a finalizer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labctl.experiments import ledger
from labctl.runtime.dockerenv import docker_client

REPO = Path(__file__).resolve().parents[2]
LAB = "test-db-app"
# A private tag: labctl/app:local is shared with other work on this engine.
APP_IMAGE = "labctl/app:test-db-app"
ROOT_PASSWORD, APP_PASSWORD = "root-pw-test", "app-pw-test"
TABLE = ("CREATE TABLE writes (id VARCHAR(64) PRIMARY KEY, served_by VARCHAR(64), "
         "created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))")
FLAVORS = {"mysql": ("labctl/mysql:local", "mysqld", "mysql"),
           "mariadb": ("labctl/mariadb:local", "mariadbd", "mariadb")}
SEMISYNC = {
    "mysql": ["INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'",
              "SET GLOBAL rpl_semi_sync_source_timeout = {ms}", "SET GLOBAL rpl_semi_sync_source_enabled = 1"],
    "mariadb": ["SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
                "SET GLOBAL rpl_semi_sync_master_timeout = {ms}", "SET GLOBAL rpl_semi_sync_master_enabled = 1"],
}
SEMISYNC_OFF = {"mysql": "SET GLOBAL rpl_semi_sync_source_enabled = 0",
                "mariadb": "SET GLOBAL rpl_semi_sync_master_enabled = 0"}


def labels(lab: str) -> dict[str, str]:
    # Not io.labctl.managed: `labctl down --all` (other tests' teardown on this shared engine)
    # removes every managed container, and these are this test's alone.
    return {"io.labctl.lab": lab}


def remove_lab(lab: str) -> None:
    client = docker_client()
    for container in client.containers.list(all=True, filters={"label": [f"io.labctl.lab={lab}"]}):
        container.remove(force=True, v=True)
    for network in client.networks.list(filters={"label": [f"io.labctl.lab={lab}"]}):
        network.remove()


@dataclass
class Stack:
    """A database, a standby (same schema, no replication), the app, and how to reach them."""

    flavor: str
    lab: str
    db: Any
    standby: Any
    app: Any
    url: str

    def sql(self, statement: str, on: Any = None) -> str:
        client = FLAVORS[self.flavor][2]
        # MYSQL_PWD rather than -p: mysql warns about a password on the command line.
        result = (on or self.db).exec_run([client, "-h127.0.0.1", "-uroot", "-N", "-B", "labctl", "-e", statement],
                                          environment={"MYSQL_PWD": ROOT_PASSWORD})
        assert result.exit_code == 0, result.output.decode()
        return str(result.output.decode()).strip()

    def ids(self) -> set[str]:
        return set(self.sql("SELECT id FROM writes").split())


def http(method: str, url: str, timeout: float = 15) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def wait_until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def app_image() -> str:
    stream = docker_client().api.build(path=str(REPO / "images" / "app"), dockerfile="Dockerfile.app.local",
                                       tag=APP_IMAGE, rm=True, forcerm=True, decode=True,
                                       labels={"io.labctl.lab": LAB})
    errors = [chunk["error"] for chunk in stream if "error" in chunk]
    assert not errors, errors
    return APP_IMAGE


def start_app(lab: str, image: str, environment: dict[str, str]) -> tuple[Any, str]:
    client = docker_client()
    app = client.containers.run(image, name=f"{lab}-app", network=lab, environment=environment, labels=labels(lab),
                                ports={"8000/tcp": ("127.0.0.1", None)}, detach=True)
    app.reload()
    url = f"http://127.0.0.1:{app.ports['8000/tcp'][0]['HostPort']}"
    wait_until(lambda: http("GET", f"{url}/health")[0] == 200, 30, "the app")
    return app, url


@pytest.fixture(scope="module", params=sorted(FLAVORS))
def stack(request: pytest.FixtureRequest, app_image: str) -> Iterator[Stack]:
    flavor = str(request.param)
    lab = f"{LAB}-{flavor}"
    image, server, _ = FLAVORS[flavor]
    remove_lab(lab)
    request.addfinalizer(lambda: remove_lab(lab))
    client = docker_client()
    client.networks.create(lab, labels=labels(lab))
    environment = {"MYSQL_ROOT_PASSWORD": ROOT_PASSWORD, "MYSQL_DATABASE": "labctl", "MYSQL_USER": "app",
                   "MYSQL_PASSWORD": APP_PASSWORD}
    db, standby = (client.containers.run(
        image, [server, "--log-bin=binlog", f"--server-id={n}"], name=f"{lab}-{name}", hostname=f"{flavor}-{name}",
        network=lab, labels=labels(lab), detach=True, environment=environment)
        for n, name in ((1, "primary"), (2, "standby")))
    app, url = start_app(lab, app_image, {"DB_WRITER": f"{lab}-primary:3306", "DB_READERS": f"{lab}-primary:3306",
                                          "DB_USER": "app", "DB_PASSWORD": APP_PASSWORD,
                                          # One process, so consecutive requests share its connection pool.
                                          "WORKERS": "1"})
    found = Stack(flavor, lab, db, standby, app, url)
    for node in (db, standby):
        wait_until(lambda node=node: found.sql("SELECT 1", on=node) == "1", 120, f"{flavor} to accept connections")
        found.sql(TABLE, on=node)
    yield found


def test_write_read_and_duplicate(stack: Stack) -> None:
    status, body, headers = http("POST", f"{stack.url}/write?id=first-1")
    assert (status, body["outcome"], body["id"]) == (200, "ack", "first-1"), body
    node = f"{stack.flavor}-primary"
    assert headers["X-DB-Node"] == body["db_node"] == node
    status, body, headers = http("GET", f"{stack.url}/read/first-1")
    assert status == 200 and body["found"] and body["row"]["written_by"] == headers["X-Served-By"], body
    assert headers["X-DB-Node"] == node and body["row"]["created_at"]
    assert http("GET", f"{stack.url}/read/first-1?primary=1")[0] == 200
    status, body, _ = http("POST", f"{stack.url}/write?id=first-1")
    assert (status, body["outcome"]) == (409, "duplicate")
    status, body, headers = http("GET", f"{stack.url}/read/never-written")
    assert (status, body["found"], headers["X-DB-Node"]) == (404, False, node)
    assert "first-1" in stack.ids()


def test_bad_id_is_rejected(stack: Stack) -> None:
    assert http("POST", f"{stack.url}/write")[0] == 400
    assert http("POST", f"{stack.url}/write?id={'x' * 65}")[0] == 400


def test_commit_without_answer_is_unknown_and_may_land(stack: Stack) -> None:
    # Semi-sync with no replica: COMMIT waits for an ack that never comes, beyond the
    # app's 5 s read timeout, then the primary gives up waiting and commits.
    for statement in SEMISYNC[stack.flavor]:
        stack.sql(statement.format(ms=9000))
    try:
        status, body, _ = http("POST", f"{stack.url}/write?id=unknown-1")
        assert (status, body["outcome"], body["stage"]) == (504, "unknown", "commit"), body
        wait_until(lambda: "unknown-1" in stack.ids(), 30, "the unknown write to land")
    finally:
        stack.sql(SEMISYNC_OFF[stack.flavor])


def test_insert_without_answer_is_failed_and_absent(stack: Stack) -> None:
    assert http("POST", f"{stack.url}/write?id=warm-1")[0] == 200  # a pooled connection to reuse
    stack.db.pause()
    try:
        status, body, _ = http("POST", f"{stack.url}/write?id=paused-1")
    finally:
        stack.db.unpause()
    assert (status, body["outcome"], body["stage"]) == (503, "failed", "insert"), body
    time.sleep(1)  # the server sees the INSERT, then the closed connection, and rolls back
    assert "paused-1" not in stack.ids()
    assert http("POST", f"{stack.url}/write?id=after-pause-1")[0] == 200


def test_stopped_database_fails_then_reconnects(stack: Stack) -> None:
    stack.db.stop(timeout=5)
    status, body, _ = http("POST", f"{stack.url}/write?id=stopped-1")
    assert (status, body["outcome"]) == (503, "failed") and body["stage"].startswith("connect"), body
    status, body, _ = http("GET", f"{stack.url}/read/first-1")
    assert (status, body["outcome"]) == (503, "failed"), body
    stack.db.start()
    wait_until(lambda: http("POST", f"{stack.url}/write?id=restarted-1")[0] == 200, 120, "writes after restart")
    assert "stopped-1" not in stack.ids()


def run_locust(url: str, folder: Path, seconds: int, users: int = 4,
               extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    locustfile = folder / "locustfile.py"
    locustfile.write_text("from labctl.loadgen.db_user import DbWriteUser  # noqa: F401\n")
    plugin = REPO / "labctl" / "loadgen" / "plugin.py"
    argv = [sys.executable, "-m", "locust", "-f", f"{plugin},{locustfile}", "--host", url, "--headless",
            "--only-summary", "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "2",
            "--exit-code-on-error", "0", "--loglevel", "WARNING"]
    env = {**os.environ, "LABCTL_SAMPLES_DIR": str(folder), **(extra_env or {})}
    with open(folder / "locust.log", "w", encoding="utf-8") as log:
        return subprocess.Popen(argv, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def test_ledger_through_a_database_crash(stack: Stack, tmp_path: Path) -> None:
    run_dir = tmp_path / f"20261125-000000-{stack.flavor}-crash"
    run_dir.mkdir()
    locust = run_locust(stack.url, run_dir, 20)
    time.sleep(4)
    stack.db.kill()
    fault_at = time.time()  # once the kill has returned: no write sent after this can reach the old server
    time.sleep(2)
    stack.db.start()
    assert locust.wait(timeout=60) == 0, (run_dir / "locust.log").read_text()
    writes = ledger.read_ledger(run_dir)
    report = ledger.report(writes, stack.ids(), fault_at=fault_at)
    counts = report["writes"]
    assert counts["acknowledged"] > 20 and counts["failed"] > 0, report
    # A crashed (not lost) single server with durable commits keeps every acknowledged write.
    assert (counts["lost"], counts["unexpected"], counts["failed_present"]) == (0, 0, 0), report
    assert counts["recovered"] <= counts["unknown"]
    assert report["rto_s"] is not None and report["rto_s"] > 2, report
    assert report["stale_reads"]["stale"] == 0 and report["stale_reads"]["reads"] > 20
    assert list(run_dir.glob("samples-*.csv")), "the plugin's samples are still written"


def test_writes_follow_the_writer_endpoint_at_once(stack: Stack, app_image: str) -> None:
    # What HAProxy's writer switch does, done with a network alias: "writer" moves from the
    # killed primary to the standby. The pooled connection fails fast, the app reconnects
    # within the same request, and that very request is acknowledged by the new node.
    network = docker_client().networks.get(stack.lab)
    network.disconnect(stack.db)
    network.connect(stack.db, aliases=["writer"])
    app = docker_client().containers.run(
        app_image, name=f"{stack.lab}-app-writer", network=stack.lab, labels=labels(stack.lab), detach=True,
        environment={"DB_WRITER": "writer:3306", "DB_USER": "app", "DB_PASSWORD": APP_PASSWORD, "WORKERS": "1"},
        ports={"8000/tcp": ("127.0.0.1", None)})
    app.reload()
    url = f"http://127.0.0.1:{app.ports['8000/tcp'][0]['HostPort']}"
    wait_until(lambda: http("POST", f"{url}/write?id=switch-1")[0] == 200, 120, "writes through the alias")
    stack.db.kill()
    network.disconnect(stack.standby)
    network.connect(stack.standby, aliases=["writer"])
    began = time.monotonic()
    status, body, headers = http("POST", f"{url}/write?id=switch-2")
    took = time.monotonic() - began
    assert (status, headers["X-DB-Node"]) == (200, f"{stack.flavor}-standby"), body
    assert took < 3, f"the first write after the switch took {took:.2f} s"
    print(f"{stack.flavor}: first write after the writer switch acknowledged in {took * 1000:.0f} ms")


def serve(behaviour: str) -> tuple[socket.socket, str]:
    """A listening socket that, per connection, never answers ("silent") or reads the
    request and hangs up ("hangup"); "refused" closes the socket so connecting is refused."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    if behaviour == "refused":
        listener.close()
        return listener, url

    def accept() -> None:
        held = []
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            if behaviour == "hangup":
                conn.close()
            else:
                held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return listener, url


@pytest.mark.parametrize(("behaviour", "outcome"), [("refused", "failed"), ("silent", "unknown"),
                                                    ("hangup", "unknown")])
def test_client_side_outcomes(tmp_path: Path, behaviour: str, outcome: str) -> None:
    # Refused: nothing was sent. A timeout or a dropped connection: it may have landed.
    listener, url = serve(behaviour)
    try:
        locust = run_locust(url, tmp_path, 3, users=1, extra_env={"LABCTL_DB_TIMEOUT": "1"})
        assert locust.wait(timeout=60) == 0, (tmp_path / "locust.log").read_text()
    finally:
        listener.close()
    writes = ledger.read_ledger(tmp_path)
    assert writes and {w.outcome for w in writes} == {outcome}, writes[:3]


def test_no_database_configured(app_image: str) -> None:
    lab = f"{LAB}-none"
    remove_lab(lab)
    try:
        docker_client().networks.create(lab, labels=labels(lab))
        _, url = start_app(lab, app_image, {})
        status, body, _ = http("POST", f"{url}/write?id=a")
        assert (status, body["outcome"]) == (503, "failed") and "no database configured" in body["error"]
        assert http("GET", f"{url}/work?ms=1")[0] == 200
        # The chaos switches still work, and apply to the DB endpoints too.
        assert http("POST", f"{url}/_chaos/fail?percent=100")[0] == 200
        status, body, _ = http("POST", f"{url}/write?id=a")
        assert (status, body["outcome"]) == (500, "failed")
        assert http("GET", f"{url}/")[0] == 500
        http("POST", f"{url}/_chaos/reset")
        http("POST", f"{url}/_chaos/unhealthy")
        assert http("GET", f"{url}/health")[0] == 503
    finally:
        remove_lab(lab)
