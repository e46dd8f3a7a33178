"""The labctl sample app: a small multi-process, multi-threaded HTTP service.

Every response names the instance that served it (X-Served-By header and JSON body).
Endpoints: / , /health, /work?ms=N (burn CPU), /sleep?ms=N (wait), and switches for
drills: POST /_chaos/slow?ms=N, /_chaos/fail?percent=P, /_chaos/unhealthy,
/_chaos/reset, GET /_chaos. With DB_WRITER set, also POST /write?id=ID, GET /read/<id>
and GET /read/<id>?primary=1 (see appdb.py; those need PyMySQL, the rest is standard
library only); with SHARD_MAP set, /shard/write and /shard/read/<id> (appshard.py).
The chaos switches apply to the DB endpoints too.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlparse

import appdb
import appshard

INSTANCE = os.environ.get("INSTANCE") or socket.gethostname()
PORT = int(os.environ.get("PORT", "8000"))
WORKERS = max(1, int(os.environ.get("WORKERS", "2")))
LOG_REQUESTS = os.environ.get("LOG_REQUESTS") == "1"
# The switches live in a file so every worker process sees the same state.
STATE_FILE = os.environ.get("CHAOS_STATE", "/tmp/labctl-app-chaos.json")
DEFAULT_STATE = {"slow_ms": 0, "fail_percent": 0, "unhealthy": False}


def read_state() -> dict[str, object]:
    try:
        with open(STATE_FILE, encoding="utf-8") as handle:
            return {**DEFAULT_STATE, **json.load(handle)}
    except (OSError, ValueError):
        return dict(DEFAULT_STATE)


def write_state(state: dict[str, object]) -> None:
    temporary = f"{STATE_FILE}.{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    os.replace(temporary, STATE_FILE)


def burn_cpu(ms: float) -> None:
    deadline = time.thread_time() + ms / 1000.0
    value = 0
    while time.thread_time() < deadline:
        for i in range(1000):
            value += i * i


def number(query: dict[str, list[str]], name: str, default: float = 0.0) -> float:
    try:
        return max(0.0, float(query.get(name, [default])[0]))
    except ValueError:
        return default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "labctl-app"
    # Buffered: headers and body leave in one write when the request is done, so a server
    # paused mid-reply never hands the proxy a half response it can neither use nor retry.
    wbufsize = 64 * 1024
    # With Nagle on, a reply larger than one write would wait for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        if LOG_REQUESTS:
            sys.stderr.write(f"{INSTANCE} {self.address_string()} {format % args}\n")

    def reply(self, status: int, body: dict[str, object], db_node: str = "", shard: str = "") -> None:
        data = (json.dumps({"served_by": INSTANCE, **body}) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", INSTANCE)
        if db_node:
            self.send_header("X-DB-Node", db_node)
        if shard:
            self.send_header("X-Shard", shard)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        state = read_state()
        if url.path == "/health":
            healthy = not state["unhealthy"]
            self.reply(200 if healthy else 503, {"status": "ok" if healthy else "unhealthy"})
            return
        if url.path == "/_chaos":
            self.reply(200, {"chaos": state})
            return
        self.normal_request(unquote(url.path), query, state)

    def normal_request(self, path: str, query: dict[str, list[str]], state: dict[str, object]) -> None:
        slow_ms = float(state["slow_ms"])  # type: ignore[arg-type]
        if slow_ms:
            time.sleep(slow_ms / 1000.0)
        if random.uniform(0, 100) < float(state["fail_percent"]):  # type: ignore[arg-type]
            # outcome: nothing reached the database, so a write here is known to have failed.
            self.reply(500, {"path": path, "error": "failing on purpose (/_chaos/fail)", "outcome": "failed"})
            return
        if path.startswith("/shard/"):
            answer, shard = appshard.handle(self.command, path, query, INSTANCE)
            self.reply(answer.status, {**answer.body, "shard": shard}, answer.node, shard)
            return
        if path == "/write" or path.startswith("/read/"):
            answer = appdb.handle(self.command, path, query, INSTANCE)
            self.reply(answer.status, {**answer.body, "db_node": answer.node} if answer.node else answer.body,
                       answer.node)
            return
        if path == "/work":
            burn_cpu(number(query, "ms", 10))
        elif path == "/sleep":
            time.sleep(number(query, "ms", 10) / 1000.0)
        self.reply(200, {"path": path})

    def do_POST(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        state = read_state()
        if url.path == "/_chaos/slow":
            state["slow_ms"] = number(query, "ms", 0)
        elif url.path == "/_chaos/fail":
            state["fail_percent"] = min(100.0, number(query, "percent", 100))
        elif url.path == "/_chaos/unhealthy":
            state["unhealthy"] = True
        elif url.path == "/_chaos/reset":
            state = dict(DEFAULT_STATE)
        else:
            self.normal_request(unquote(url.path), query, state)
            return
        write_state(state)
        self.reply(200, {"chaos": state})


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def serve_forever(server: Server) -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server.serve_forever(poll_interval=0.5)


def main() -> None:
    initial = {"slow_ms": float(os.environ.get("SLOW_MS", "0")),
               "fail_percent": float(os.environ.get("FAIL_PERCENT", "0")), "unhealthy": False}
    write_state(initial)
    server = Server(("0.0.0.0", PORT), Handler)
    children = []
    for _ in range(WORKERS - 1):
        pid = os.fork()
        if pid == 0:
            serve_forever(server)
        children.append(pid)

    def stop(*_: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{INSTANCE}: listening on :{PORT} with {WORKERS} processes", flush=True)
    server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
