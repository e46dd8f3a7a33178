"""Doctor's probes on the real engine and kernel; they leave nothing behind."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator

import pytest

from labctl import doctor
from labctl.doctor import Check, run_checks, supported_faults
from labctl.runtime.dockerenv import docker_client, port_holder

LABEL = "io.labctl.doctor=1"
pytestmark = pytest.mark.docker


def leftovers() -> list[str]:
    """Names of containers labelled as the doctor's, running or not."""
    return [c.name for c in docker_client().containers.list(all=True, filters={"label": LABEL})]


def needs_nettools() -> None:
    if not docker_client().images.list(name=doctor.NETTOOLS_IMAGE):
        pytest.skip(f"{doctor.NETTOOLS_IMAGE} is not built; 'labctl images build nettools' builds it")


@pytest.fixture()
def fresh_probes() -> Iterator[None]:
    """Probe for real in this test (not from another test's cache); sweep by label afterwards."""
    doctor._probe_faults.cache_clear()
    yield
    doctor._probe_faults.cache_clear()
    for container in docker_client().containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)


@pytest.fixture()
def checks(fresh_probes: None) -> dict[str, Check]:
    needs_nettools()
    started = time.monotonic()
    found = {c.name: c for c in run_checks([])}
    assert time.monotonic() - started < 20, "the probes run side by side and take a few seconds at most"
    return found


def test_engine_and_compose(checks: dict[str, Check]) -> None:
    assert checks["docker engine"].status == "ok"
    assert checks["docker engine"].detail.startswith("server ")
    assert checks["compose v2"].status == "ok"
    assert int(checks["compose v2"].detail.split(".")[0]) >= 2


def test_faults_this_engine_supports(checks: dict[str, Check]) -> None:
    for name in ("tbf", "iptables", "pause", "cpu limit", "memory limit"):
        assert checks[f"fault: {name}"].status == "ok", checks[f"fault: {name}"]
    assert "enforced" in checks["fault: cpu limit"].detail


def test_netem_answer_is_real(checks: dict[str, Check]) -> None:
    netem = checks["fault: netem"]
    # This project's kernel has no netem ("Specified qdisc kind is unknown"); another kernel may.
    assert netem.status in ("ok", "unsupported"), netem
    if netem.status == "unsupported":
        assert "qdisc" in netem.detail.lower(), netem
    assert supported_faults()["netem"] is (netem.status == "ok")


def test_probes_leave_nothing_behind(checks: dict[str, Check]) -> None:
    assert checks["fault: pause"].status == "ok"
    assert leftovers() == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_host_fallback_agrees_with_the_container(checks: dict[str, Check]) -> None:
    from_host = {c.name: c for c in doctor._network_probes(None)}
    for name in doctor.NETWORK_PROBES:
        assert from_host[f"fault: {name}"].status == checks[f"fault: {name}"].status
    assert "unshare --net" in from_host["fault: tbf"].detail


def test_busy_port_names_this_process() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        (check,) = [c for c in run_checks([port]) if c.name == f"port {port}"]
    assert check.status == "warn"
    if shutil.which("ss"):
        assert f"pid {os.getpid()}" in check.detail, check


def test_port_published_by_a_container(fresh_probes: None) -> None:
    needs_nettools()
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    container = docker_client().containers.run(
        doctor.NETTOOLS_IMAGE, ["sleep", "60"], detach=True, labels=doctor.PROBE_LABEL,
        ports={"80/tcp": ("127.0.0.1", port)},
    )
    try:
        assert port_holder(port) == f"container {container.name}"
    finally:
        container.remove(force=True)
