"""Doctor and engine checks that need no Docker: version parsing and v1 detection, ports,
connection advice, the network probe script (against fake tools) and its parsing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import requests.exceptions

from labctl import doctor
from labctl.doctor import Check, parse_cpu_quota, parse_probe_output, probe_script
from labctl.errors import DockerUnavailableError
from labctl.runtime.dockerenv import (
    compose_verdict,
    engine_advice,
    ephemeral_port_range,
    parse_compose_version,
    parse_ss_holder,
    port_holder,
    port_is_free,
)


def test_compose_version_v2_and_v1() -> None:
    assert parse_compose_version("2.26.1-4\n") == "2.26.1"
    assert parse_compose_version("v2.29.7") == "2.29.7"
    assert parse_compose_version("1.29.2") is None
    assert parse_compose_version("") is None


def test_compose_verdict_v2_plugin() -> None:
    assert compose_verdict("2.26.1-4\n", None) == "2.26.1"
    assert compose_verdict("v2.29.7\n", "1.29.2") == "2.29.7"


def test_compose_verdict_only_v1() -> None:
    with pytest.raises(DockerUnavailableError) as caught:
        compose_verdict(None, "1.29.2\n")
    assert "only Compose v1 (docker-compose 1.29.2)" in str(caught.value)
    assert "scripts/install-compose-v2.sh" in str(caught.value)


def test_compose_verdict_none_or_standalone_v2() -> None:
    with pytest.raises(DockerUnavailableError, match=r"Compose v2 is not installed .*install-compose-v2\.sh"):
        compose_verdict(None, None)
    with pytest.raises(DockerUnavailableError, match=r"standalone 'docker-compose' \(v2\.20\.3\)"):
        compose_verdict(None, "v2.20.3")


def test_port_is_free_sees_a_bound_socket() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


def test_ss_holder_parsing() -> None:
    line = 'LISTEN 0 511 127.0.0.1:8080 0.0.0.0:* users:(("nginx",pid=4242,fd=6),("nginx",pid=4243,fd=6))\n'
    assert parse_ss_holder(line) == "process nginx (pid 4242)"
    assert parse_ss_holder("LISTEN 0 511 127.0.0.1:8080 0.0.0.0:*\n") is None
    assert parse_ss_holder("") is None


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs iproute2's ss")
def test_a_port_held_as_a_connections_local_port_is_busy_and_its_holder_named() -> None:
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.connect(server.getsockname())
        local_port = client.getsockname()[1]
        assert not port_is_free(local_port)
        holder = port_holder(local_port) or ""
        assert holder.startswith("a connection of process ") and f"(pid {os.getpid()})" in holder, holder


def test_the_ephemeral_port_range_is_read_from_the_kernel_setting(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("32768\t60999\n")
    assert ephemeral_port_range(setting) == range(32768, 61000)
    setting.write_text("garbage\n")
    assert ephemeral_port_range(setting) is None
    assert ephemeral_port_range(tmp_path / "absent") is None


def _wrapped(inner: OSError) -> requests.exceptions.ConnectionError:
    """The shape the docker SDK raises: the OS error two levels down, in args."""
    return requests.exceptions.ConnectionError(requests.exceptions.ConnectionError("Connection aborted.", inner))


def test_engine_advice_permission_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    advice = engine_advice(_wrapped(PermissionError(13, "Permission denied")))
    assert advice.startswith("permission denied on the Docker socket (unix:///var/run/docker.sock)")
    assert "docker' group" in advice


def test_engine_advice_daemon_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/nothing.sock")
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    advice = engine_advice(_wrapped(FileNotFoundError(2, "No such file or directory")))
    assert advice.startswith("cannot connect to the Docker engine at unix:///tmp/nothing.sock: is it running?")
    assert "scripts/setup-host.sh" in advice and "DOCKER_HOST" in advice


def test_engine_advice_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    advice = engine_advice(_wrapped(FileNotFoundError(2, "No such file or directory")))
    assert advice == "Docker is not installed; install and start it with 'sudo bash scripts/setup-host.sh'"


def test_check_formatting() -> None:
    assert str(Check("fault: tbf", "ok", "works")) == "ok          fault: tbf: works"
    assert str(Check("port 8080", "warn", "in use")) == "warn        port 8080: in use"
    assert str(Check("fault: netem", "unsupported", "no qdisc")).startswith("unsupported fault: netem: ")


def test_probe_output_parsing() -> None:
    text = "netem Error: Specified qdisc kind is unknown. \ntbf ok\niptables unknown: iptables is not installed\n"
    checks = {c.name: c for c in parse_probe_output(text, "here")}
    assert checks["fault: netem"].status == "unsupported"
    assert checks["fault: netem"].detail.startswith("Error: Specified qdisc kind is unknown. (latency faults")
    assert checks["fault: tbf"] == Check("fault: tbf", "ok", "works (here)")
    assert checks["fault: iptables"] == Check("fault: iptables", "warn", "unknown: iptables is not installed")


def test_probe_output_missing_line_is_unknown() -> None:
    checks = parse_probe_output("tbf ok\n", "here")
    assert [c.status for c in checks] == ["warn", "ok", "warn"]


def _fake_tools(tmp_path: Path) -> dict[str, str]:
    """A PATH with the shell tools the script needs, a fake `tc` that knows no netem, and no iptables."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "tr", "head"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    tc = bin_dir / "tc"
    tc.write_text('#!/bin/sh\ncase "$*" in *netem*) echo "Error: Specified qdisc kind is unknown." >&2; exit 2;; '
                  "esac\nexit 0\n")
    tc.chmod(0o755)
    return {"PATH": str(bin_dir)}


def test_probe_script_against_fake_tools(tmp_path: Path) -> None:
    env = {**os.environ, **_fake_tools(tmp_path)}
    result = subprocess.run(["sh", "-c", probe_script()], env=env, capture_output=True, text=True, check=True)
    checks = {c.name: c for c in parse_probe_output(result.stdout, "fake")}
    assert checks["fault: netem"].status == "unsupported"
    assert "Specified qdisc kind is unknown." in checks["fault: netem"].detail
    assert checks["fault: tbf"].status == "ok"
    assert checks["fault: iptables"] == Check("fault: iptables", "warn", "unknown: iptables is not installed")


def test_cpu_quota_parsing() -> None:
    assert parse_cpu_quota("50000\n100000\n") == (50000, 100000)
    assert parse_cpu_quota("50000 100000\n") == (50000, 100000)
    assert parse_cpu_quota("max 100000\n") == (None, 100000)
    assert parse_cpu_quota("-1\n100000\n") == (None, 100000)
    assert parse_cpu_quota("cat: no such file\n") == (None, None)


def test_supported_faults_from_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    found = (Check("fault: netem", "unsupported", "x"), Check("fault: tbf", "ok", "x"),
             Check("fault: pause", "warn", "unknown"))
    monkeypatch.setattr(doctor, "_probe_faults", lambda: found)
    assert doctor.supported_faults() == {"netem": False, "tbf": True, "pause": False}


def test_health_from_docker_status_text() -> None:
    from labctl.runtime.inventory import health_from_status

    assert health_from_status("Up 3 seconds (healthy)") == "healthy"
    assert health_from_status("Up 1 second (health: starting)") == "starting"
    assert health_from_status("Up 9 seconds (unhealthy)") == "unhealthy"
    assert health_from_status("Exited (137) 2 seconds ago") == "none"
