"""Copies of one lab side by side (`up --as NAME`): three copies of lb-nginx come up at once,
each on its own port; killing one copy's load balancer costs the others no request; `down` of
one leaves the others running; `status --all` lists them with their owners."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.integration.conftest import REPO, Cli, lab_objects, served_by

COPIES = ("ci-1", "ci-2", "ci-3")


def _start(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*cli.argv(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli.env(), cwd=REPO)


def _finish(process: subprocess.Popen[str], timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{process.args!r} failed:\n{out}\n{err}"
    return out


def _copy_urls(cli: Cli) -> dict[str, str]:
    rows = json.loads(cli.ok("status", "--all", "--json"))
    return {r["owner"]: r["endpoints"]["http"] for r in rows if r["lab"] == "lb-nginx" and r["owner"] in COPIES}


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_three_copies_side_by_side(cli: Cli) -> None:
    for process in [_start(cli, "up", "lb-nginx", "--as", name) for name in COPIES]:
        _finish(process)
    urls = _copy_urls(cli)
    ports = sorted(_port(url) for url in urls.values())
    assert sorted(urls) == sorted(COPIES) and len(set(ports)) == 3
    assert all(port < 32768 and port != 8080 and (port - 8080) % 100 == 0 for port in ports), ports
    for url in urls.values():
        assert set(served_by(url, 3)) <= {"app-1", "app-2", "app-3"}
    shown = cli.ok("status", "lb-nginx", "--as", "ci-2")
    assert f"copy ci-2 of lb-nginx, ports + {_port(urls['ci-2']) - 8080}" in shown

    _kill_one_while_the_others_serve(cli, urls)

    cli.ok("down", "lb-nginx", "--as", "ci-1")
    assert lab_objects("lb-nginx--ci-1") == []
    assert sorted(_copy_urls(cli)) == ["ci-2", "ci-3"]
    for name in ("ci-2", "ci-3"):
        assert json.loads(cli.ok("status", "lb-nginx", "--as", name, "--json"))["state"] == "up"
        assert served_by(urls[name], 2)


def _kill_one_while_the_others_serve(cli: Cli, urls: dict[str, str]) -> None:
    loads = {name: _start(cli, "load", "lb-nginx", "--as", name, "--duration", "8s", "--users", "2", "--json")
             for name in ("ci-2", "ci-3")}
    time.sleep(3)
    cli.ok("chaos", "lb-nginx", "--as", "ci-1", "kill", "lb")
    for name, process in loads.items():
        summary = json.loads(_finish(process))
        assert summary["lab"] == f"lb-nginx--{name}"
        assert summary["requests"] > 0 and summary["failures"] == 0, (name, summary["errors"])
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(urls["ci-1"], timeout=3)
