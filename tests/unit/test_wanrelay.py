"""The WAN link's relay on loopback: a real relay process between a client and a server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

RELAY = Path(__file__).parents[2] / "images" / "app" / "wanrelay.py"
SERVER_HOST, RELAY_HOST = "127.0.0.1", "127.0.0.2"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((SERVER_HOST, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def greeting_server() -> Iterator[int]:
    """A server that speaks first (as MySQL does), then echoes every line."""
    port = _free_port()
    listener = socket.create_server((SERVER_HOST, port))
    code = ("import socket,sys\n"
            "l=socket.socket(fileno=int(sys.argv[1]))\n"
            "while True:\n"
            "  c,_=l.accept(); c.sendall(b'HELLO\\n')\n"
            "  while (d:=c.recv(65536)): c.sendall(d)\n"
            "  c.close()\n")
    server = subprocess.Popen([sys.executable, "-c", code, str(listener.fileno())], pass_fds=[listener.fileno()])
    listener.close()
    yield port
    server.kill()
    server.wait()


def _relay(port: int, *options: str) -> subprocess.Popen[bytes]:
    relay = subprocess.Popen([sys.executable, str(RELAY), "--bind", RELAY_HOST, "--target", SERVER_HOST,
                              "--ports", str(port), *options], stdout=subprocess.PIPE)
    assert relay.stdout is not None
    assert b"wanrelay: ports" in relay.stdout.readline()
    return relay


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _round_trips(port: int, payload: bytes = b"ping\n") -> tuple[float, float]:
    """(connect to greeting, one echoed line) in seconds, through the relay."""
    with socket.create_connection((RELAY_HOST, port), timeout=10) as conn:
        started = time.monotonic()
        assert _read_line(conn) == b"HELLO\n"
        greeted = time.monotonic()
        conn.sendall(payload)
        assert _read_line(conn) == payload
        return greeted - started, time.monotonic() - greeted


def test_every_byte_crosses_the_link_one_round_trip_late(greeting_server: int) -> None:
    relay = _relay(greeting_server, "--rtt-ms", "300")
    try:
        greeting, echo = _round_trips(greeting_server)
    finally:
        relay.terminate()
        relay.wait(5)
    assert 0.3 <= greeting < 3
    assert 0.3 <= echo < 3


def test_without_latency_the_relay_only_forwards(greeting_server: int) -> None:
    relay = _relay(greeting_server)
    try:
        payload = b"x" * 200_000 + b"\n"
        greeting, echo = _round_trips(greeting_server, payload)
    finally:
        relay.terminate()
        relay.wait(5)
    assert greeting < 1 and echo < 2


def test_the_rate_paces_a_large_write(greeting_server: int) -> None:
    relay = _relay(greeting_server, "--rate-mbit", "8")
    try:
        # 500 kB at 1 MB/s takes half a second to send, however fast the loopback is (the echo
        # comes back while the rest is still going out).
        _, echo = _round_trips(greeting_server, b"y" * 500_000 + b"\n")
    finally:
        relay.terminate()
        relay.wait(5)
    assert echo >= 0.45
