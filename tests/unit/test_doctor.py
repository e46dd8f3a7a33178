"""Doctor and engine checks that need no Docker: version parsing, ports, probe parsing."""

from __future__ import annotations

import socket

from labctl.dockerenv import parse_compose_version, port_is_free
from labctl.doctor import _parse_probe_output


def test_compose_version_v2_and_v1() -> None:
    assert parse_compose_version("2.26.1-4\n") == "2.26.1"
    assert parse_compose_version("v2.29.7") == "2.29.7"
    assert parse_compose_version("1.29.2") is None
    assert parse_compose_version("") is None


def test_port_is_free_sees_a_bound_socket() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


def test_probe_output_parsing() -> None:
    text = "netem Error: Specified qdisc kind is unknown.\ntbf ok\niptables ok\n"
    assert _parse_probe_output(text) == {
        "netem": (False, "Error: Specified qdisc kind is unknown."),
        "tbf": (True, "works"),
        "iptables": (True, "works"),
    }


def test_health_from_docker_status_text() -> None:
    from labctl.inventory import health_from_status

    assert health_from_status("Up 3 seconds (healthy)") == "healthy"
    assert health_from_status("Up 1 second (health: starting)") == "starting"
    assert health_from_status("Up 9 seconds (unhealthy)") == "unhealthy"
    assert health_from_status("Exited (137) 2 seconds ago") == "none"
