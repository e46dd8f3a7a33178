"""The lab model: a folder of YAML and Markdown turned into typed building blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import paths
from labctl.dnslab import dns_problems
from labctl.errors import LabConfigError, LabNotFoundError, Problem
from labctl.model.overrides import Override, apply_overrides, override_for
from labctl.model.schema import (
    BLOCK_KINDS,
    BLOCK_SCHEMAS,
    META_KEYS,
    META_SCHEMA,
    schema_errors,
    unknown_key_sentence,
    with_defaults,
)
from labctl.model.yamlsource import FieldPath, SourceDocument, dotted, load_yaml_file

LB_KINDS = ("nginx", "haproxy")
_BLOCK_NAME = r"^[a-z][a-z0-9_]*$"


@dataclass(frozen=True)
class Block:
    """One building block of a lab: its name, kind and validated parameters."""

    name: str
    kind: str
    params: dict[str, Any]

    @property
    def service_base(self) -> str:
        """Compose service name (underscores are not valid in host names)."""
        return self.name.replace("_", "-")

    @property
    def replicas(self) -> int:
        return int(self.params.get("replicas", 1))

    @property
    def is_lb(self) -> bool:
        return self.kind in LB_KINDS

    @property
    def publish(self) -> dict[str, int]:
        return dict(self.params.get("publish", {}))

    @property
    def node_count(self) -> int:
        """How many containers the block runs (a db block: the primary and its replicas)."""
        if self.kind == "db":
            return self.replicas + 1
        return self.replicas if self.kind == "app" else 1

    def instances(self) -> list[str]:
        """Service names of this block: `app-1`, `app-2`, ... for replicated blocks, `db-1` first for a db."""
        if self.kind in ("app", "db"):
            return [f"{self.service_base}-{i}" for i in range(1, self.node_count + 1)]
        return [self.service_base]

    def host_ports(self, endpoint: str) -> list[int]:
        """Host ports of one published endpoint, one per node for a db block."""
        base = self.publish.get(endpoint)
        if base is None:
            return []
        return [base + i for i in range(self.node_count)] if self.kind == "db" else [base]


@dataclass(frozen=True)
class Lab:
    """A validated lab: metadata, building blocks in file order, and where it came from."""

    name: str
    title: str
    summary: str
    folder: Path
    blocks: dict[str, Block]
    notes: str = ""
    bind: str = "127.0.0.1"
    overrides: tuple[str, ...] = field(default=())

    @property
    def project(self) -> str:
        """The Compose project name; every lab gets its own."""
        return f"labctl-{self.name}"

    @property
    def guide(self) -> Path:
        return self.folder / "README.md"

    def discovered_by(self, app: Block) -> list[Block]:
        """The haproxy blocks that find `app`'s replicas through DNS (`discovery`) rather than a
        server list: every replica then also answers the DNS name `app.service_base`."""
        return [b for b in self.blocks.values()
                if b.kind == "haproxy" and b.params.get("backends") == app.name and "discovery" in b.params]

    def endpoints(self) -> dict[str, tuple[Block, int]]:
        """Published endpoint name -> (block, host port)."""
        found: dict[str, tuple[Block, int]] = {}
        for block in self.blocks.values():
            for name, port in block.publish.items():
                found[name] = (block, port)
        return found

    def endpoint_urls(self, only: Block | None = None, node: int | None = None) -> dict[str, str]:
        """Published endpoint name -> URL on the bind address (of one block, if given). A db
        block's nodes publish consecutive ports: each is listed under its node's name (only
        the `node`-th when given)."""
        urls = {}
        for name, (block, base) in self.endpoints().items():
            if only is not None and block is not only:
                continue
            suffix = "/stats" if name == "stats" and block.kind == "haproxy" else ""
            scheme = "mysql" if name in ("mysql", "writer", "reader") else "https" if name == "https" else "http"
            if block.kind != "db":
                urls[name] = f"{scheme}://{self.bind}:{base}{suffix}"
                continue
            for index, instance in enumerate(block.instances()):
                if node is None or node == index:
                    urls[instance] = f"{scheme}://{self.bind}:{base + index}"
        return urls


def list_lab_names() -> list[str]:
    """Names of the labs in the labs folder, sorted."""
    root = paths.labs_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "lab.yaml").is_file())


def lab_folder(name: str) -> Path:
    """The folder of a lab by name; an unknown name lists the labs there are."""
    folder = paths.labs_dir() / name
    if not (folder / "lab.yaml").is_file():
        known = ", ".join(list_lab_names()) or "none"
        raise LabNotFoundError(f"no lab named '{name}' in {paths.labs_dir()} (labs: {known})")
    return folder


def load_lab(name: str, overrides: list[Override] | None = None) -> Lab:
    """Load, override and validate a lab; every problem is reported at once."""
    folder = lab_folder(name)
    display = _display_path(folder / "lab.yaml")
    doc = load_yaml_file(folder / "lab.yaml", display)
    overrides = overrides or []
    if not isinstance(doc.data, dict):
        raise LabConfigError([Problem(display, 1, "", "expected a mapping of title, summary and blocks")])
    data = apply_overrides(doc.data, overrides)
    problems = [_problem(doc, overrides, p, s) for p, s in validate_lab_data(data)]
    if problems:
        raise LabConfigError(problems)
    return _build_lab(name, folder, data, overrides)


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _problem(doc: SourceDocument, overrides: list[Override], path: FieldPath, text: str) -> Problem:
    override = override_for(path, overrides, in_file=path in doc.lines)
    if override is not None:
        return Problem(override.source, None, dotted(path), text)
    return Problem(doc.source, doc.line_of(path), dotted(path), text)


def validate_lab_data(data: dict[str, Any]) -> list[tuple[FieldPath, str]]:
    """Every problem in a lab's data as (field path, sentence): schema first, then references."""
    meta = {k: v for k, v in data.items() if k in META_KEYS}
    found = schema_errors(META_SCHEMA, meta)
    blocks: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key in META_KEYS:
            continue
        block_problems = _block_problems(str(key), value, data)
        found.extend(block_problems)
        if not block_problems:
            blocks[str(key)] = value
    if not blocks and not found:
        found.append(((), "a lab needs at least one building block (app, nginx, haproxy, db)"))
    found.extend(_reference_problems(blocks))
    return found


def _block_problems(key: str, value: Any, data: dict[str, Any]) -> list[tuple[FieldPath, str]]:
    if not isinstance(value, dict) or "kind" not in value:
        if isinstance(value, dict):
            return [((key,), _kindless_block_sentence(key, data))]
        return [((key,), unknown_key_sentence(key, META_KEYS))]
    if not re.match(_BLOCK_NAME, key):
        return [((key,), "block names use lowercase letters, digits and _ and start with a letter")]
    kind = value["kind"]
    if kind not in BLOCK_SCHEMAS:
        return [((key, "kind"), f"expected one of {', '.join(BLOCK_KINDS)}, got {kind!r}")]
    return [((key, *path), text) for path, text in schema_errors(BLOCK_SCHEMAS[kind], value)]


def _kindless_block_sentence(key: str, data: dict[str, Any]) -> str:
    # Most often a --set naming a block by its kind ('nginx.cache=on' where the block is 'lb').
    sentence = f"building block '{key}' needs a kind (one of {', '.join(BLOCK_KINDS)})"
    named = sorted(k for k, v in data.items() if isinstance(v, dict) and "kind" in v)
    same_kind = [k for k in named if data[k]["kind"] == key]
    if same_kind:
        return f"{sentence}; this lab's {key} block is named '{same_kind[0]}'"
    return f"{sentence}; this lab's blocks: {', '.join(named)}" if named else sentence


def _reference_problems(blocks: dict[str, dict[str, Any]]) -> list[tuple[FieldPath, str]]:
    found: list[tuple[FieldPath, str]] = []
    apps = [name for name, b in blocks.items() if b["kind"] == "app"]
    dbs = [name for name, b in blocks.items() if b["kind"] == "db"]
    for name, block in blocks.items():
        if block["kind"] in LB_KINDS:
            found.extend(_backend_problems(name, block, blocks, apps + dbs if block["kind"] == "haproxy" else apps))
        if block["kind"] == "haproxy":
            found.extend(_layer7_problems(name, block, apps))
            found.extend(_discovery_problems(name, block, blocks))
        if block["kind"] == "app":
            found.extend(_database_problems(name, block, blocks, dbs))
    found.extend(dns_problems(blocks))
    found.extend(_publish_problems(blocks))
    return found


def _database_problems(
    name: str, block: dict[str, Any], blocks: dict[str, dict[str, Any]], dbs: list[str]
) -> list[tuple[FieldPath, str]]:
    database, via = block.get("database"), block.get("database_via")
    if database is not None and database not in dbs:
        known = ", ".join(dbs) or "none"
        return [((name, "database"), f"expected the name of a db block ({known}), got {database!r}")]
    if via is None:
        return []
    if database is None:
        return [((name, "database_via"), "needs 'database' too")]
    routers = [n for n, b in blocks.items() if b["kind"] == "haproxy" and b.get("backends") == database]
    if via not in routers:
        known = ", ".join(routers) or "none"
        return [((name, "database_via"), f"expected a haproxy block with backends: {database} ({known}), got {via!r}")]
    return []


def _backend_problems(
    name: str, block: dict[str, Any], blocks: dict[str, dict[str, Any]], targets: list[str]
) -> list[tuple[FieldPath, str]]:
    target = block.get("backends")
    if target is None:
        return [((name,), "missing required key 'backends'")]
    if target not in targets:
        known = ", ".join(targets) or "none"
        what = "an app or db block" if block["kind"] == "haproxy" else "an app block"
        return [((name, "backends"), f"expected the name of {what} ({known}), got {target!r}")]
    if blocks[target]["kind"] == "db":
        return []
    weights = block.get("weights")
    replicas = int(blocks[target].get("replicas", 1))
    if weights is not None and len(weights) != replicas and "discovery" not in block:
        return [((name, "weights"), f"expected {replicas} weights, one per {target} replica, got {len(weights)}")]
    return []


def _layer7_problems(name: str, block: dict[str, Any], apps: list[str]) -> list[tuple[FieldPath, str]]:
    # tcp mode forwards bytes: it never parses a request, so it has no path and no headers.
    found: list[tuple[FieldPath, str]] = []
    for key, what in (("routes", "route by path"), ("response_headers", "add headers")):
        if block.get(key) and block.get("backends") not in apps:
            found.append(((name, key), f"a MySQL router cannot {what}: it speaks TCP, not HTTP"))
        elif block.get(key) and block.get("mode", "http") == "tcp":
            found.append(((name, key), f"mode tcp cannot {what}: it never reads the HTTP request (use mode: http)"))
    for index, route in enumerate(block.get("routes", [])):
        if route["backends"] not in apps:
            known = ", ".join(apps) or "none"
            found.append(((name, "routes", index, "backends"),
                          f"expected the name of an app block ({known}), got {route['backends']!r}"))
    return found


def _discovery_problems(
    name: str, block: dict[str, Any], blocks: dict[str, dict[str, Any]]
) -> list[tuple[FieldPath, str]]:
    discovery, target = block.get("discovery"), blocks.get(str(block.get("backends")))
    if discovery is None or target is None:
        return []
    if target["kind"] != "app":
        return [((name, "discovery"), "discovery finds app replicas; a db block has fixed nodes")]
    if block.get("weights") is not None:
        text = "weights need one server line per replica; with discovery the servers come from DNS"
        return [((name, "weights"), text)]
    replicas = int(target.get("replicas", 1))
    if replicas > discovery["slots"]:
        return [((name, "discovery", "slots"),
                 f"{discovery['slots']} slots cannot hold {block['backends']}'s {replicas} replicas; raise slots")]
    return []


def _publish_problems(blocks: dict[str, dict[str, Any]]) -> list[tuple[FieldPath, str]]:
    found: list[tuple[FieldPath, str]] = []
    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    for block_name, block in blocks.items():
        if block["kind"] == "app" and block.get("publish") and int(block.get("replicas", 1)) > 1:
            text = "an app with more than one replica cannot publish a port; put an lb in front"
            found.append(((block_name, "publish"), text))
        for endpoint, port in block.get("publish", {}).items():
            path: FieldPath = (block_name, "publish", endpoint)
            if endpoint in names:
                found.append((path, f"endpoint '{endpoint}' is already published by {names[endpoint]}"))
            taken = [p for p in _block_ports(block, port) if p in ports]
            if taken:
                found.append((path, f"port {taken[0]} is already published by {ports[taken[0]]}"))
            names[endpoint] = block_name
            ports.update((p, f"{block_name}.publish.{endpoint}") for p in _block_ports(block, port))
    return found


def _block_ports(block: dict[str, Any], port: int) -> list[int]:
    nodes = int(block.get("replicas", 2)) + 1 if block["kind"] == "db" else 1
    return list(range(port, port + nodes))


def _without_kind(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != "kind"}


def _build_lab(name: str, folder: Path, data: dict[str, Any], overrides: list[Override]) -> Lab:
    blocks = {
        key: Block(key, value["kind"], with_defaults(value["kind"], _without_kind(value)))
        for key, value in data.items()
        if key not in META_KEYS
    }
    return Lab(
        name=name,
        title=data["title"],
        summary=data["summary"].strip(),
        folder=folder,
        blocks=blocks,
        notes=data.get("notes", ""),
        bind=data.get("bind", "127.0.0.1"),
        overrides=tuple(o.text for o in overrides),
    )
