"""`labctl dashboard`: one local page (127.0.0.1 only) and the JSON it polls once a second."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from labctl.dashboard.state import Dashboard
from labctl.errors import UsageError

HOST = "127.0.0.1"
Progress = Callable[[str], None]


def page() -> bytes:
    return resources.files("labctl.dashboard").joinpath("page.html").read_bytes()


def handler_for(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to one lab's dashboard: / is the page, /state.json its data."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", page())
            elif self.path == "/state.json":
                body = json.dumps(dashboard.snapshot()).encode()
                self._send(HTTPStatus.OK, "application/json", body)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

        def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one poll a second per viewer: not worth a line each

    return Handler


def bind(lab: str, port: int) -> ThreadingHTTPServer:
    """The server for `lab` on 127.0.0.1:port (0: any free port), not serving yet."""
    try:
        server = ThreadingHTTPServer((HOST, port), handler_for(Dashboard(lab)))
    except OSError as exc:
        raise UsageError(f"cannot serve the dashboard on {HOST}:{port}: {exc.strerror or exc}; "
                         "choose another with --port") from exc
    server.daemon_threads = True
    return server


def serve(server: ThreadingHTTPServer) -> None:
    """Serve until interrupted (Ctrl-C), then close the socket."""
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
