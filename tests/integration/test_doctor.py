"""Doctor's probes on the real engine and kernel; they leave nothing behind."""

from __future__ import annotations

from labctl.dockerenv import docker_client
from labctl.doctor import run_checks


def test_doctor_probes_for_real() -> None:
    checks = {c.name: c for c in run_checks([])}
    assert checks["docker engine"].status == "ok"
    assert checks["compose v2"].status == "ok"
    assert checks["fault: pause"].status == "ok"
    assert checks["fault: tbf"].status == "ok"
    assert checks["fault: iptables"].status == "ok"
    netem = checks["fault: netem"]
    # This project's kernel has no netem; another kernel may. Either way the answer is real.
    assert netem.status == "ok" or "qdisc" in netem.detail.lower(), netem
    leftovers = docker_client().containers.list(all=True, filters={"label": "io.labctl.doctor=1"})
    assert leftovers == []
