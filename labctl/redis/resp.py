"""A small RESP2 client over a plain socket: enough for SET, GET, WAIT and CLUSTER commands.

Written here rather than taken from redis-py because the load must see every MOVED and ASK
redirect itself (redis-py's cluster client follows them silently), and because it runs under
gevent's monkey-patching in Locust, where a plain socket is all it needs. Standard library only.
"""

from __future__ import annotations

import socket
from typing import Any

# Keys hash to one of 16384 slots: CRC16 (XMODEM) of the key, or of its {hash tag}.
SLOTS = 16384


class RespError(Exception):
    """An error reply (`-MOVED 1234 host:port`, `-CLUSTERDOWN ...`): the server answered."""

    @property
    def code(self) -> str:
        return str(self).split(" ", 1)[0]


class Redirect(RespError):
    """A -MOVED or -ASK reply: the slot, and the endpoint that serves it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        _, slot, endpoint = text.split(" ")
        host, _, port = endpoint.rpartition(":")
        self.slot, self.host, self.port = int(slot), host, int(port)


class Connection:
    """One connection to one node; any socket error closes it (the caller makes a new one)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass

    def command(self, *args: str | int) -> Any:
        """Send one command; its reply (an error reply is raised as RespError or Redirect)."""
        self.sock.sendall(encode(args))
        return self.read_reply()

    def read_reply(self) -> Any:
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"{self.host}:{self.port} closed the connection")
        kind, body = line[:1], line[1:-2].decode()
        if kind == b"+":
            return body
        if kind == b"-":
            raise Redirect(body) if body.startswith(("MOVED ", "ASK ")) else RespError(body)
        if kind == b":":
            return int(body)
        if kind == b"$":
            return None if body == "-1" else self._bulk(int(body))
        if kind == b"*":
            return None if body == "-1" else [self.read_reply() for _ in range(int(body))]
        raise ConnectionError(f"{self.host}:{self.port} sent an unknown reply type {kind!r}")

    def _bulk(self, length: int) -> str:
        data = self.reader.read(length + 2)
        if len(data) != length + 2:
            raise ConnectionError(f"{self.host}:{self.port} closed the connection mid-reply")
        return data[:-2].decode(errors="replace")


def encode(args: tuple[str | int, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def ask(host: str, port: int, *args: str | int, timeout: float = 1.0) -> Any:
    """One command on a fresh connection, closed afterwards."""
    connection = Connection(host, port, timeout)
    try:
        return connection.command(*args)
    finally:
        connection.close()


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    """The hash slot of a key, as the cluster spec defines it (a non-empty {tag} hashes alone)."""
    data = key.encode()
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return _crc16(data) % SLOTS
