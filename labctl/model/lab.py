"""The lab model: a folder of YAML and Markdown turned into typed building blocks."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import kinds, paths
from labctl.errors import LabConfigError, LabNotFoundError, Problem
from labctl.kinds.base import BlockKind
from labctl.model.instance import reserved_offset, split_instance, with_port_offset
from labctl.model.overrides import Override, apply_overrides, override_for
from labctl.model.schema import (
    META_KEYS,
    META_SCHEMA,
    block_kinds,
    block_schema,
    schema_errors,
    unknown_key_sentence,
    with_defaults,
)
from labctl.model.yamlsource import FieldPath, SourceDocument, dotted, load_yaml_file

_BLOCK_NAME = r"^[a-z][a-z0-9_]*$"


@dataclass(frozen=True)
class Block:
    """One building block of a lab: its name, kind and validated parameters."""

    name: str
    kind: str
    params: dict[str, Any]

    @property
    def spec(self) -> BlockKind:
        """The block's kind: what the core asks about anything kind-specific."""
        return kinds.kind_of(self.kind)

    @property
    def service_base(self) -> str:
        """Compose service name (underscores are not valid in host names)."""
        return self.name.replace("_", "-")

    @property
    def replicas(self) -> int:
        return int(self.params.get("replicas", 1))

    @property
    def is_lb(self) -> bool:
        return self.spec.load_balancer

    @property
    def publish(self) -> dict[str, int]:
        return dict(self.params.get("publish", {}))

    @property
    def node_count(self) -> int:
        """How many containers the block runs (a db block: the primary and its replicas)."""
        return self.spec.node_count(self.params)

    def instances(self) -> list[str]:
        """Service names of this block: `app-1`, `app-2`, ... for replicated blocks, `db-1` first for a db."""
        return self.spec.instances(self)

    def host_ports(self, endpoint: str) -> list[int]:
        """Host ports of one published endpoint, one per node for a db block."""
        return self.spec.host_ports(self, endpoint)


@dataclass(frozen=True)
class Lab:
    """A validated lab: metadata, building blocks in file order, and where it came from."""

    name: str  # the instance it runs as: the lab's own name, or LAB--COPY (labctl.model.instance)
    title: str
    summary: str
    folder: Path
    blocks: dict[str, Block]
    notes: str = ""
    bind: str = "127.0.0.1"
    overrides: tuple[str, ...] = field(default=())
    copy: str = ""  # the NAME of `up --as NAME`, for a copy
    port_offset: int = 0  # added to every published host port of a copy

    @property
    def lab_name(self) -> str:
        """The name of the lab folder this instance runs (a copy's lab, not the copy)."""
        return self.folder.name

    @property
    def project(self) -> str:
        """The Compose project name; every lab gets its own."""
        return f"labctl-{self.name}"

    @property
    def guide(self) -> Path:
        return self.folder / "README.md"

    def guides(self) -> dict[str, Path]:
        """The lab's guide in each language it is written in: en (README.md), ko (README.ko.md)."""
        found = {"en": self.guide, "ko": self.folder / "README.ko.md"}
        return {lang: path for lang, path in found.items() if path.is_file()}

    def blocks_of(self, kind: str) -> list[Block]:
        """The blocks of one kind, in file order."""
        return [block for block in self.blocks.values() if block.kind == kind]

    def discovered_by(self, app: Block) -> list[Block]:
        """The load balancers that find `app`'s replicas through DNS (`discovery`) rather than a
        server list: every replica then also answers the DNS name `app.service_base`."""
        return [b for b in self.blocks.values()
                if b.is_lb and b.params.get("backends") == app.name and "discovery" in b.params]

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
        urls: dict[str, str] = {}
        for name, (block, base) in self.endpoints().items():
            if only is None or block is only:
                urls.update(block.spec.endpoint_urls(self, block, name, base, node))
        return urls


def list_lab_names() -> list[str]:
    """Names of the labs in the labs folder, sorted."""
    root = paths.labs_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "lab.yaml").is_file())


@dataclass(frozen=True)
class LabEntry:
    """One row of `labctl list`: read from the lab file without validating it (`labctl
    validate` does that), so one broken lab does not hide the others."""

    name: str
    title: str
    blocks: str
    notes: str
    problem: str | None = None


def lab_entries() -> list[LabEntry]:
    """Every lab in the labs folder, as `labctl list` shows it."""
    return [_entry(name) for name in list_lab_names()]


def _entry(name: str) -> LabEntry:
    try:
        data = load_yaml_file(paths.labs_dir() / name / "lab.yaml", name).data
    except LabConfigError as exc:
        return LabEntry(name, "", "", "", str(exc).splitlines()[-1].strip())
    if not isinstance(data, dict):
        return LabEntry(name, "", "", "", "not a mapping of title, summary and blocks")
    summaries = [_block_summary(str(key), value) for key, value in data.items() if key not in META_KEYS]
    return LabEntry(name, str(data.get("title", "")), ", ".join(summaries), str(data.get("notes", "")))


def _block_summary(name: str, value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind not in kinds.REGISTRY:
        return f"{name} (?)"
    block = Block(name, kind, with_defaults(kind, _without_kind(value)))
    try:
        return block.spec.summary(block)
    except (TypeError, ValueError):  # a value `labctl validate` would reject, like replicas: three
        return f"{name} ({kind})"


def lab_folder(name: str) -> Path:
    """The folder of a lab by name (or by a copy's instance name); an unknown name lists the
    labs there are."""
    name = split_instance(name)[0]
    folder = paths.labs_dir() / name
    if not (folder / "lab.yaml").is_file():
        known = ", ".join(list_lab_names()) or "none"
        raise LabNotFoundError(f"no lab named '{name}' in {paths.labs_dir()} (labs: {known})")
    return folder


def load_lab(name: str, overrides: list[Override] | None = None) -> Lab:
    """Load, override and validate a lab; every problem is reported at once. `name` may be a
    copy's instance name (`lb-nginx--alice`): its ports then move by the offset it was placed at."""
    folder = lab_folder(name)
    display = _display_path(folder / "lab.yaml")
    doc = load_yaml_file(folder / "lab.yaml", display)
    overrides = overrides or []
    data = apply_overrides(doc.require_mapping("title, summary and blocks"), overrides)
    problems = [_problem(doc, overrides, p, s) for p, s in validate_lab_data(data)]
    if problems:
        raise LabConfigError(problems)
    lab = _build_lab(name, folder, data, overrides)
    copy = split_instance(name)[1]
    if not copy:
        return lab
    return with_port_offset(dataclasses.replace(lab, copy=copy), reserved_offset(name))


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
    # A field naming a block that has problems of its own would only add a second, misleading
    # one ("lb.backends: expected the name of an app block (none), got 'app'").
    invalid = {str(key) for key in data if key not in META_KEYS} - set(blocks)
    found.extend(p for p in _reference_problems(blocks) if _value_at(blocks, p[0]) not in invalid)
    return found


def _value_at(blocks: dict[str, Any], path: FieldPath) -> Any:
    value: Any = blocks
    try:
        for part in path:
            value = value[part]
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _block_problems(key: str, value: Any, data: dict[str, Any]) -> list[tuple[FieldPath, str]]:
    if not isinstance(value, dict) or "kind" not in value:
        if isinstance(value, dict):
            return [((key,), _kindless_block_sentence(key, data))]
        return [((key,), unknown_key_sentence(key, META_KEYS))]
    if not re.match(_BLOCK_NAME, key):
        return [((key,), "block names use lowercase letters, digits and _ and start with a letter")]
    kind = value["kind"]
    schema = block_schema(kind) if isinstance(kind, str) else None
    if schema is None:
        return [((key, "kind"), f"expected one of {', '.join(block_kinds())}, got {kind!r}")]
    return [((key, *path), text) for path, text in schema_errors(schema, value)]


def _kindless_block_sentence(key: str, data: dict[str, Any]) -> str:
    # Most often a --set naming a block by its kind ('nginx.cache=on' where the block is 'lb').
    sentence = f"building block '{key}' needs a kind (one of {', '.join(block_kinds())})"
    named = sorted(k for k, v in data.items() if isinstance(v, dict) and "kind" in v)
    same_kind = [k for k in named if data[k]["kind"] == key]
    if same_kind:
        return f"{sentence}; this lab's {key} block is named '{same_kind[0]}'"
    return f"{sentence}; this lab's blocks: {', '.join(named)}" if named else sentence


def _reference_problems(blocks: dict[str, dict[str, Any]]) -> list[tuple[FieldPath, str]]:
    found: list[tuple[FieldPath, str]] = []
    for name, block in blocks.items():
        found.extend(kinds.kind_of(block["kind"]).reference_problems(name, block, blocks))
    found.extend(_publish_problems(blocks))
    return found


def _publish_problems(blocks: dict[str, dict[str, Any]]) -> list[tuple[FieldPath, str]]:
    found: list[tuple[FieldPath, str]] = []
    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    for block_name, block in blocks.items():
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
    return list(range(port, port + kinds.kind_of(block["kind"]).port_span(block)))


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
