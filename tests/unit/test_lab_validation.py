"""Lab files: every problem at once, each with file, line and dotted field."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabConfigError, LabNotFoundError
from labctl.model.lab import list_lab_names, load_lab
from labctl.model.overrides import parse_overrides


def write_lab(root: Path, name: str, text: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "lab.yaml").write_text(text, encoding="utf-8")
    (folder / "README.md").write_text("# guide\n", encoding="utf-8")


@pytest.fixture()
def labs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABCTL_LABS_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems_of(name: str, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(LabConfigError) as info:
        load_lab(name, parse_overrides(overrides or []))
    return [str(p) for p in info.value.problems]


BAD_LAB = """\
title: Broken
summary: every kind of mistake at once
app:
  kind: app
  replicas: three
  memroy: 128m
lb:
  kind: nginx
  backends: web
  algorithm: fastest
  health:
    fail_timeout: 5
titel: typo
"""


def test_every_problem_is_reported_with_file_line_and_field(labs_root: Path) -> None:
    write_lab(labs_root, "bad", BAD_LAB)
    assert problems_of("bad") == [
        "bad/lab.yaml:6 app.memroy: unknown key 'memroy', did you mean 'memory'?",
        "bad/lab.yaml:5 app.replicas: expected an integer from 1 to 32, got 'three'",
        "bad/lab.yaml:10 lb.algorithm: expected one of round_robin, least_conn, ip_hash, random, got 'fastest'",
        "bad/lab.yaml:12 lb.health.fail_timeout: expected a duration like 200ms, 5s or 1m, got 5",
        "bad/lab.yaml:13 titel: unknown key 'titel', did you mean 'title'?",
    ]


def test_references_between_blocks_are_checked(labs_root: Path) -> None:
    write_lab(labs_root, "refs", "title: t\nsummary: s\napp:\n  kind: app\n  replicas: 2\n"
              "lb:\n  kind: nginx\n  backends: web\n")
    assert problems_of("refs") == [
        "refs/lab.yaml:8 lb.backends: expected the name of an app block (app), got 'web'",
    ]


def test_a_block_that_names_an_invalid_block_adds_no_second_problem(labs_root: Path) -> None:
    write_lab(labs_root, "inv", "title: t\nsummary: s\napp:\n  kind: app\n  replicas: 0\n"
              "lb:\n  kind: nginx\n  backends: app\n  weights: [1, 2]\n  publish: {http: 8080}\n"
              "edge:\n  kind: haproxy\n  backends: app\n  routes: [{path: /r, backends: app}]\n"
              "  publish: {http: 8080}\n")
    assert problems_of("inv") == [
        "inv/lab.yaml:5 app.replicas: expected an integer from 1 to 32, got 0",
        "inv/lab.yaml:15 edge.publish.http: endpoint 'http' is already published by lb",
        "inv/lab.yaml:15 edge.publish.http: port 8080 is already published by lb.publish.http",
    ]


def test_invalid_db_and_dns_blocks_add_no_second_problem(labs_root: Path) -> None:
    write_lab(labs_root, "inv", "title: t\nsummary: s\ndb:\n  kind: db\n  flavor: oracle\n  publish: {mysql: 13060}\n"
              "router:\n  kind: haproxy\n  backends: db\n  mode: tcp\n"
              "app:\n  kind: app\n  database: db\n  database_via: router\n"
              "dns:\n  kind: dns\n  records: app\n  ttl: -1\nclient:\n  kind: client\n  dns: dns\n"
              "lb:\n  kind: nginx\n  backends: web\n")
    assert problems_of("inv") == [
        "inv/lab.yaml:5 db.flavor: expected one of mysql, mariadb, got 'oracle'",
        "inv/lab.yaml:18 dns.ttl: expected an integer from 0 to 86400, got -1",
        "inv/lab.yaml:24 lb.backends: expected the name of an app block (app), got 'web'",
    ]


def test_weights_must_match_replicas(labs_root: Path) -> None:
    write_lab(labs_root, "w", "title: t\nsummary: s\napp:\n  kind: app\n  replicas: 3\n"
              "lb:\n  kind: haproxy\n  backends: app\n  weights: [1, 2]\n")
    assert problems_of("w") == ["w/lab.yaml:9 lb.weights: expected 3 weights, one per app replica, got 2"]


def test_missing_title_and_block_kind(labs_root: Path) -> None:
    write_lab(labs_root, "k", "summary: s\nweb:\n  replicas: 2\n")
    assert problems_of("k") == [
        "k/lab.yaml:1 missing required key 'title'",
        "k/lab.yaml:2 web: building block 'web' needs a kind "
        "(one of app, nginx, haproxy, db, dns, client, etcd, galera, group, master-master, shards, redis, patroni, "
        "keepalived, link)",
    ]


def test_yaml_syntax_error_points_at_line(labs_root: Path) -> None:
    write_lab(labs_root, "syntax", "title: t\nsummary: s\napp: {kind: app\n")
    [problem] = problems_of("syntax")
    assert problem.startswith("syntax/lab.yaml:4 invalid YAML")


def test_keys_are_the_names_written(labs_root: Path) -> None:
    # YAML reads `1:` as a number and `on:` as true; beside other names they broke the sorting
    # of unknown keys with a TypeError.
    write_lab(labs_root, "keys", "title: t\nsummary: s\n1: {kind: app}\napp:\n  kind: app\n  on: x\n")
    assert problems_of("keys") == [
        "keys/lab.yaml:3 1: block names use lowercase letters, digits and _ and start with a letter",
        "keys/lab.yaml:6 app.on: unknown key 'on' (known keys: cpus, database, database_via, kind, memory, "
        "publish, replicas, shards, workers)",
    ]


def test_duplicate_keys_are_problems(labs_root: Path) -> None:
    write_lab(labs_root, "dup", "title: t\nsummary: s\napp:\n  kind: app\n  replicas: 1\n  replicas: 2\n")
    assert problems_of("dup") == ["dup/lab.yaml:6 app.replicas: duplicate key"]


def test_same_port_published_twice(labs_root: Path) -> None:
    write_lab(labs_root, "ports", "title: t\nsummary: s\napp:\n  kind: app\n  publish: {http: 8080}\n"
              "lb:\n  kind: haproxy\n  backends: app\n  publish: {stats: 8080}\n")
    assert problems_of("ports") == [
        "ports/lab.yaml:9 lb.publish.stats: port 8080 is already published by app.publish.http",
    ]


def test_overrides_are_validated_and_named_in_errors() -> None:
    assert problems_of("lb-nginx", ["app.replicas=three", "lb.algorithm=rr", "lb.helth.x=1"]) == [
        "--set app.replicas=three app.replicas: expected an integer from 1 to 32, got 'three'",
        "--set lb.helth.x=1 lb.helth: unknown key 'helth', did you mean 'health'?",
        "--set lb.algorithm=rr lb.algorithm: expected one of round_robin, least_conn, ip_hash, random, got 'rr'",
    ]


def test_a_set_naming_a_block_by_its_kind_names_the_block() -> None:
    kinds = ("one of app, nginx, haproxy, db, dns, client, etcd, galera, group, master-master, shards, redis, patroni, "
             "keepalived, link")
    assert problems_of("nginx-features", ["nginx.cache=on", "web.replicas=2"]) == [
        f"--set nginx.cache=on nginx: building block 'nginx' needs a kind ({kinds}); "
        "this lab's nginx block is named 'lb'",
        f"--set web.replicas=2 web: building block 'web' needs a kind ({kinds}); this lab's blocks: app, lb",
    ]


def test_overrides_change_the_lab() -> None:
    lab = load_lab("lb-nginx", parse_overrides(["app.replicas=5", "lb.algorithm=least_conn"]))
    assert lab.blocks["app"].instances() == ["app-1", "app-2", "app-3", "app-4", "app-5"]
    assert lab.blocks["lb"].params["algorithm"] == "least_conn"
    assert lab.overrides == ("app.replicas=5", "lb.algorithm=least_conn")


def test_malformed_override() -> None:
    with pytest.raises(LabConfigError, match="expected KEY=VALUE"):
        parse_overrides(["replicas"])


def test_override_into_a_scalar() -> None:
    assert problems_of("lb-nginx", ["lb.algorithm.x=1"]) == [
        "--set lb.algorithm.x=1 lb.algorithm: is a single value, it has no fields to set",
    ]


def test_unknown_lab_lists_the_labs() -> None:
    with pytest.raises(LabNotFoundError, match="lb-nginx"):
        load_lab("no-such-lab")


@pytest.mark.parametrize("name", list_lab_names())
def test_every_shipped_lab_validates_and_has_a_guide(name: str) -> None:
    lab = load_lab(name)
    assert lab.guide.is_file(), f"{name} has no README.md guide"
    assert lab.title and lab.summary


# Linux's default net.ipv4.ip_local_port_range starts here: a port at or above it can be
# held by any outgoing connection's local end, and `up` then fails at random.
FIRST_EPHEMERAL_PORT = 32768


@pytest.mark.parametrize("name", list_lab_names())
def test_every_shipped_lab_publishes_below_the_ephemeral_port_range(name: str) -> None:
    lab = load_lab(name)
    published = {
        f"{block.name}.publish.{endpoint}": port
        for block in lab.blocks.values()
        for endpoint in block.publish
        for port in block.host_ports(endpoint)
    }
    high = {key: port for key, port in published.items() if port >= FIRST_EPHEMERAL_PORT}
    assert not high, f"{name} publishes ports in the ephemeral range: {high}"


def test_defaults_are_filled_in() -> None:
    lab = load_lab("lb-haproxy")
    health = lab.blocks["lb"].params["health"]
    assert health["interval"] == "1s" and health["redispatch"] is True
    assert lab.endpoint_urls() == {"http": "http://127.0.0.1:8081", "stats": "http://127.0.0.1:8404/stats"}
