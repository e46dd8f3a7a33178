"""labctl's in-lab client: resolves a name through the lab's DNS server and sends HTTP load.

Each simulated client behaves like a program on its own host with a stub resolver cache:
it asks the DNS server directly (UDP, A records), keeps the answer for its TTL, uses the
first address of the answer (the server rotates the order: DNS round robin), and keeps one
keep-alive connection to that address. After a failed request it reconnects, to the same
cached address, until the cached answer expires. There is no health checking anywhere.

    labclient.py resolve [NAME]           print the addresses and TTL (exit 1 when none)
    labclient.py wait ADDRESS             wait until the app there answers /health
    labclient.py load --clients N --duration S [--rate R]

With LABCTL_TARGET_ADDRESS set, every client sends to that address instead of resolving a
name (a floating address that keepalived moves between load balancers).

`load` prints one line per request on stdout, `time,latency_ms,backend,ok,service_ms`
(labctl's sample format: latency counts from when the request was due, service from when it
was sent), and one line per DNS answer on stderr. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import struct
import sys
import threading
import time

SERVER = os.environ.get("LABCTL_DNS_SERVER", "127.0.0.1")
NAME = os.environ.get("LABCTL_DNS_NAME", "app.lab.test")
# Set: every request goes to this address (a floating address that moves between load
# balancers) and no name is resolved.
TARGET = os.environ.get("LABCTL_TARGET_ADDRESS", "")
PORT = int(os.environ.get("LABCTL_APP_PORT", "8000"))
CONNECT_TIMEOUT = float(os.environ.get("LABCTL_CONNECT_TIMEOUT", "0.5"))
READ_TIMEOUT = float(os.environ.get("LABCTL_READ_TIMEOUT", "2"))


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(part)]) + part.encode() for part in name.rstrip(".").split(".")) + b"\0"


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        offset += 1 + length


def query(name: str, server: str = SERVER, timeout: float = 1.0) -> tuple[list[str], int]:
    """The A records of `name` from `server` and their smallest TTL, in the server's order."""
    qid = random.randrange(1 << 16)
    packet = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(name) + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, 53))
        while True:
            data, _ = sock.recvfrom(4096)
            if struct.unpack("!H", data[:2])[0] == qid:
                return parse_answer(data, name)


def parse_answer(data: bytes, name: str) -> tuple[list[str], int]:
    """Addresses (in the answer's order) and the smallest TTL of a DNS response's A records."""
    _, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", data[:12])
    if flags & 0x000F:
        raise OSError(f"DNS error rcode {flags & 0x000F} for {name}")
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(data, offset) + 4
    addresses, ttls = [], []
    for _ in range(ancount):
        offset = _skip_name(data, offset)
        rtype, _, ttl, length = struct.unpack("!HHIH", data[offset:offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(data[offset:offset + 4]))
            ttls.append(ttl)
        offset += length
    if not addresses:
        raise OSError(f"no A records for {name}")
    return addresses, min(ttls)


class Output:
    """Sample lines from every client thread, flushed twice a second."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_flush = 0.0

    def sample(self, latency_ms: float, service_ms: float, backend: str, ok: bool) -> None:
        now = time.time()
        with self.lock:
            sys.stdout.write(f"{now:.4f},{latency_ms:.2f},{backend},{1 if ok else 0},{service_ms:.2f}\n")
            if now - self.last_flush > 0.5:
                sys.stdout.flush()
                self.last_flush = now

    def event(self, text: str) -> None:
        with self.lock:
            sys.stderr.write(f"{time.time():.3f} {text}\n")
            sys.stderr.flush()


class StubClient:
    """One client host: a TTL-honouring answer cache and one keep-alive connection."""

    def __init__(self, number: int, clients: int, out: Output, path: str) -> None:
        self.number = number
        self.clients = clients
        self.out = out
        self.path = path
        self.addresses: list[str] = []
        self.expires = 0.0
        self.conn: http.client.HTTPConnection | None = None
        self.conn_address = ""

    def address(self) -> str:
        if TARGET:
            return TARGET
        if time.monotonic() >= self.expires or not self.addresses:
            first = not self.addresses
            try:
                self.addresses, ttl = query(NAME)
                # Clients started together would all expire together; real ones cached their
                # answers at different times, so the first answers' ages are spread evenly.
                share = self.number / self.clients if first else 1.0
                self.expires = time.monotonic() + ttl * share
                self.out.event(f"client-{self.number} resolved {NAME} -> {' '.join(self.addresses)} ttl {ttl}")
            except OSError as exc:
                self.out.event(f"client-{self.number} resolve failed: {exc}")
                if not self.addresses:
                    raise
        return self.addresses[0]

    def _connection(self, address: str) -> http.client.HTTPConnection:
        if self.conn is None or self.conn_address != address:
            self.close()
            conn = http.client.HTTPConnection(address, PORT, timeout=CONNECT_TIMEOUT)
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(READ_TIMEOUT)
            self.conn, self.conn_address = conn, address
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def request(self, due: float) -> None:
        sent = time.monotonic()
        try:
            conn = self._connection(self.address())
            conn.request("GET", self.path, headers={"Host": TARGET or NAME})
            # The app writes headers and body separately: without a quick ACK, Nagle on its side
            # and delayed ACK on ours add 40 ms to every request on a keep-alive connection.
            if conn.sock is not None and hasattr(socket, "TCP_QUICKACK"):
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            response = conn.getresponse()
            response.read()
            ok = response.status < 500
            backend = response.getheader("X-Served-By") or ""
        except (OSError, http.client.HTTPException):
            self.close()  # reconnect next time: to the same cached address
            ok, backend = False, ""
        done = time.monotonic()
        self.out.sample((done - due) * 1000.0, (done - sent) * 1000.0, backend, ok)

    def run(self, until: float, interval: float) -> None:
        due = time.monotonic() + (random.random() * interval if interval else 0.0)
        while due < until:
            if interval:
                time.sleep(max(0.0, due - time.monotonic()))
            else:
                due = time.monotonic()
            self.request(due)
            due += interval
        self.close()


def load(clients: int, duration: float, rate: float, path: str) -> None:
    """Run `clients` stub clients for `duration` seconds; rate 0 sends back to back."""
    out = Output()
    until = time.monotonic() + duration
    interval = clients / rate if rate > 0 else 0.0
    threads = [threading.Thread(target=StubClient(i + 1, clients, out, path).run, args=(until, interval), daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sys.stdout.flush()


def wait_healthy(address: str, timeout: float) -> bool:
    """Wait until the app at `address` answers GET /health with 200 (False after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(address, PORT, timeout=1.0)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    resolve = commands.add_parser("resolve")
    resolve.add_argument("name", nargs="?", default=NAME)
    wait = commands.add_parser("wait")
    wait.add_argument("address")
    wait.add_argument("--timeout", type=float, default=60.0)
    run = commands.add_parser("load")
    run.add_argument("--clients", type=int, default=10)
    run.add_argument("--duration", type=float, default=30.0)
    run.add_argument("--rate", type=float, default=0.0, help="total requests per second (0: back to back)")
    run.add_argument("--path", default="/")
    args = parser.parse_args()
    if args.command == "resolve":
        try:
            addresses, ttl = query(args.name)
        except OSError as exc:
            print(f"{args.name}: {exc}", file=sys.stderr)
            return 1
        print(f"{args.name} ttl {ttl}: {' '.join(addresses)}")
        return 0
    if args.command == "wait":
        return 0 if wait_healthy(args.address, args.timeout) else 1
    load(args.clients, args.duration, args.rate, args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
