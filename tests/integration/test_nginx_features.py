"""The nginx-features lab on a real Docker engine: each switch's observable effect, seen
through the published ports (cache hits, gzip, HTTPS with the lab's own certificate,
429s under a burst, 403s when denied, worker processes)."""

from __future__ import annotations

import gzip
import json
import ssl
import stat
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labctl.runtime.dockerenv import docker_client
from tests.integration.conftest import Cli, lab_objects

LAB = "nginx-features"
HTTP = "http://127.0.0.1:8110"
HTTPS = "https://127.0.0.1:8111"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers, raw body (as sent on the wire) and how long it took."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


def get(url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None) -> Answer:
    """GET on a new connection; 4xx and 5xx are answers too, not exceptions."""
    request = urllib.request.Request(url, headers=headers or {})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            body = response.read()
            return Answer(response.status, dict(response.headers), body, time.perf_counter() - started)
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read(), time.perf_counter() - started)


@dataclass
class FeaturesLab:
    """The lab, brought up again with other switches by each test."""

    cli: Cli

    def up(self, *settings: str) -> None:
        args = [item for setting in settings for item in ("--set", setting)]
        self.cli.ok("up", LAB, *args)

    @property
    def tls_folder(self) -> Path:
        return self.cli.home / "compose" / LAB / "lb" / "tls"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeaturesLab]:
    cli = Cli(tmp_path_factory.mktemp("nginx-features") / "home")
    yield FeaturesLab(cli)
    cli.run("down", LAB)
    assert lab_objects(LAB) == []


def burst(url: str, count: int, headers: dict[str, str] | None = None) -> Counter[int]:
    """Status codes of `count` GETs sent 20 at a time."""
    with ThreadPoolExecutor(max_workers=20) as pool:
        return Counter(pool.map(lambda _: get(url, headers).status, range(count)))


def test_static_files_are_served_from_the_lab_folder(lab: FeaturesLab) -> None:
    lab.up()
    page = get(f"{HTTP}/static/index.html")
    assert page.status == 200 and page.headers["Content-Type"] == "text/html"
    assert b"Nginx features, one switch at a time" in page.body
    assert "X-Served-By" not in page.headers  # no app involved
    catalog = get(f"{HTTP}/static/catalog.json")
    assert catalog.headers["Content-Type"] == "application/json"
    assert len(json.loads(catalog.body)["items"]) == 250


def test_cache_answers_the_second_request_and_faster(lab: FeaturesLab) -> None:
    lab.up()
    url = f"{HTTP}/sleep?ms=300&run={uuid.uuid4().hex}"
    first, second = get(url), get(url)
    assert "X-Cache-Status" not in second.headers
    assert second.seconds >= 0.3  # without the cache every request waits for the app

    lab.up("lb.cache=on")
    url = f"{HTTP}/sleep?ms=300&run={uuid.uuid4().hex}"
    first, second = get(url), get(url)
    assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")
    assert first.seconds >= 0.3 and second.seconds < first.seconds / 2, (first.seconds, second.seconds)
    assert second.body == first.body
    statuses = Counter(get(url).headers["X-Cache-Status"] for _ in range(20))
    assert statuses == {"HIT": 20}


def test_gzip_makes_the_text_file_smaller(lab: FeaturesLab) -> None:
    lab.up()
    plain = get(f"{HTTP}/static/catalog.json", {"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers

    lab.up("lb.gzip=on")
    packed = get(f"{HTTP}/static/catalog.json", {"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert len(packed.body) < len(plain.body) / 3, (len(packed.body), len(plain.body))
    assert gzip.decompress(packed.body) == plain.body
    # A client that does not ask for gzip still gets the plain file.
    assert "Content-Encoding" not in get(f"{HTTP}/static/catalog.json").headers


def test_https_answers_with_the_lab_certificate(lab: FeaturesLab) -> None:
    lab.up("lb.tls=on")
    key = lab.tls_folder / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    trusted = ssl.create_default_context(cafile=str(lab.tls_folder / "ca.pem"))
    answer = get(f"{HTTPS}/static/index.html", context=trusted)
    assert answer.status == 200 and b"Nginx features" in answer.body
    assert get("https://localhost:8111/", context=trusted).headers["X-Served-By"].startswith("app-")
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        get(f"{HTTPS}/", context=ssl.create_default_context())  # not signed by a public CA
    assert get(f"{HTTP}/static/index.html").status == 200  # plain HTTP still answers beside it


def test_rate_limit_rejects_a_burst_per_client(lab: FeaturesLab) -> None:
    lab.up()
    assert burst(f"{HTTP}/static/index.html", 80) == {200: 80}

    lab.up("lb.rate_limit=on")  # 10 r/s with a burst of 20
    seen = burst(f"{HTTP}/static/index.html", 80, {"X-Client-Id": "alice"})
    assert set(seen) == {200, 429}, seen
    assert seen[429] >= 20 and seen[200] >= 21, seen
    # bob has a bucket of his own: alice's burst did not use it up.
    assert burst(f"{HTTP}/static/index.html", 20, {"X-Client-Id": "bob"}) == {200: 20}


def load(lab: FeaturesLab, *args: str) -> dict[str, Any]:
    return dict(json.loads(lab.cli.ok("load", LAB, "--duration", "4s", "--users", "10", "--json", *args)))


@pytest.mark.parametrize("processes", ["1", "2"])
def test_load_under_rate_limiting_names_the_reason_of_every_failure(lab: FeaturesLab, processes: str) -> None:
    lab.up("lb.rate_limit=on")
    summary = load(lab, "--processes", processes)
    assert summary["failures"] > 1000, summary
    # Locust's own list is written once a second and missed the last second (46,229 of 50,742).
    assert summary["errors"] == [{"error": "LocustBadStatusCode(code=429)", "request": "GET /",
                                  "count": summary["failures"]}]
    # The 429s came from Nginx, not from a backend; what got through did.
    assert summary["not_from_a_backend"] == {"lb itself": summary["failures"]}
    assert sum(summary["backends"].values()) == summary["requests"] - summary["failures"]


def test_load_with_the_cache_on_credits_no_backend_with_cached_answers(lab: FeaturesLab) -> None:
    lab.up("lb.cache=on")
    summary = load(lab, "--path", f"/?run={uuid.uuid4().hex}")
    served = sum(summary["backends"].values())
    cached = summary["not_from_a_backend"]["lb cache"]
    assert served + cached == summary["requests"] and summary["failures"] == 0, summary
    assert 1 <= served <= 10 and cached > 1000, summary  # one miss per 10 s of cache_valid, per cache lock
    text = lab.cli.ok("load", LAB, "--duration", "2s", "--users", "2")
    assert "lb's cache (X-Cache-Status HIT)" in text


def test_access_rules_deny_with_403(lab: FeaturesLab) -> None:
    lab.up("lb.access=on")  # allow 127.0.0.1 (inside the container), deny all
    denied = get(f"{HTTP}/")
    assert denied.status == 403 and get(f"{HTTP}/static/index.html").status == 403
    client = denied.headers["X-Client-Addr"]  # the Docker gateway, as Nginx sees the host
    assert json.loads(lab.cli.ok("status", LAB, "--json"))["services"][-1]["health"] == "healthy"

    lab.up("lb.access=on", f"lb.access_rules=[allow {client}, deny all]")
    assert get(f"{HTTP}/").status == 200


def test_worker_processes_setting(lab: FeaturesLab) -> None:
    def workers() -> int:
        container = docker_client().containers.get(f"labctl-{LAB}-lb")
        return sum("worker process" in " ".join(row) for row in container.top()["Processes"])

    lab.up("lb.worker_processes=1")
    assert workers() == 1
    lab.up("lb.worker_processes=3")
    deadline = time.monotonic() + 10  # the old workers finish their connections, then exit
    while workers() != 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers() == 3


def test_cache_answers_while_every_backend_is_down(lab: FeaturesLab) -> None:
    lab.up("lb.cache=on")
    result = lab.cli.run("drill", LAB, "backends-down-cache", "--json", timeout=300)
    report = json.loads(result.stdout)
    assert [f["target"] for f in report["faults"]] == ["app-1", "app-2"]
    assert report["requests"] > 100 and report["failures"] == 0, report
    assert report["verdict"] == "pass" and result.returncode == 0
