"""YAML loading that remembers the line of every field, so errors can point at it."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabConfigError, Problem

FieldPath = tuple[str | int, ...]
# A lab or drill file is a few KB with about a hundred values, five levels deep: these bounds
# are far above that and far below what makes parsing slow or memory grow.
MAX_FILE_BYTES = 1024 * 1024
MAX_VALUES = 10_000
MAX_DEPTH = 32


@dataclass
class SourceDocument:
    """Parsed YAML data plus the line number of each field, keyed by its path."""

    source: str
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int | None:
        """The line of the deepest known field on `path` (a missing key points at its parent)."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None

    def require_mapping(self, what: str) -> dict[str, Any]:
        """The data, which must be a mapping (of `what`); anything else is one problem at line 1."""
        if isinstance(self.data, dict):
            return self.data
        got = "an empty file" if self.data is None else "a list" if isinstance(self.data, list) else "a single value"
        raise LabConfigError([Problem(self.source, 1, "", f"expected a mapping of {what}, got {got}")])


def dotted(path: FieldPath) -> str:
    """Render a field path the way users write it: `app.replicas`, `lb.weights[1]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_yaml_file(path: Path, display: str) -> SourceDocument:
    """Read a YAML file into a SourceDocument. Anything that is not a small UTF-8 YAML file of
    plain values (binary, UTF-16, over MAX_FILE_BYTES, tags, aliases that expand past MAX_VALUES)
    becomes one problem, as do syntax errors and duplicate keys."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _refusal(display, None, f"cannot read file: {exc.strerror}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise _refusal(display, None, f"file too large: over {MAX_FILE_BYTES / 2**20:g} MiB "
                       "(a lab or drill file is a few KB)")
    return parse_yaml(_decode(raw, display), display)


def _decode(raw: bytes, display: str) -> str:
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _refusal(display, 1, "not UTF-8 text: it starts with a UTF-16 or UTF-32 byte order mark "
                       "(save the file as UTF-8)")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise _refusal(display, raw.count(b"\n", 0, nul) + 1,
                       "not UTF-8 text: a NUL byte (is it a binary or UTF-16 file?)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _refusal(display, line, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} is not UTF-8") from exc


def _refusal(display: str, line: int | None, message: str) -> LabConfigError:
    return LabConfigError([Problem(display, line, "", message)])


def parse_yaml(text: str, display: str) -> SourceDocument:
    """Parse YAML text into a SourceDocument (plain values only: the safe loader, bounded)."""
    try:
        node, data = _compose_and_construct(text)
    except _Refused as exc:
        raise _refusal(display, exc.line, exc.reason) from exc
    except yaml.YAMLError as exc:
        raise _refusal(display, *_yaml_problem(exc, text)) from exc
    doc = SourceDocument(display, data)
    problems: list[Problem] = []
    if node is not None:
        _index_lines(node, (), doc.lines, problems, display)
    if problems:
        raise LabConfigError(problems)
    return doc


def _compose_and_construct(text: str) -> tuple[yaml.Node | None, Any]:
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


class _Refused(Exception):
    """A document refused before it is built: too many values once aliases expand, or too deep."""

    def __init__(self, mark: yaml.Mark, reason: str) -> None:
        super().__init__(reason)
        self.line = mark.line + 1
        self.reason = reason


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, counting values as it composes: an alias counts as every value it
    stands for, so a "billion laughs" document is refused after MAX_VALUES, not built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.values = 0
        self.aliased = False
        self.sizes: dict[int, int] = {}
        self.open_sizes: list[int] = []

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        mark: yaml.Mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self.sizes.get(id(node))
            if size is None:
                raise _Refused(mark, "an alias refers to a value that contains it")
            self.aliased = True
            self._count(size, mark)
            if self.open_sizes:
                self.open_sizes[-1] += size
            return node
        if len(self.open_sizes) >= MAX_DEPTH:
            raise _Refused(mark, f"values nested more than {MAX_DEPTH} levels deep")
        self.open_sizes.append(0)
        self._count(1, mark)
        node = super().compose_node(parent, index)
        size = 1 + self.open_sizes.pop()
        self.sizes[id(node)] = size
        if self.open_sizes:
            self.open_sizes[-1] += size
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Keys are names: `1:` or `on:` stay the text written (as the line index has them), not
        # a number or a boolean that later sorts and compares with the other names.
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            self.construct_object(key_node, deep=deep)
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a name, not a list or a mapping", key_node.start_mark)
            mapping[str(key_node.value)] = self.construct_object(value_node, deep=deep)
        return mapping

    def _count(self, size: int, mark: yaml.Mark) -> None:
        self.values += size
        if self.values > MAX_VALUES:
            how = " once its aliases are expanded" if self.aliased else ""
            raise _Refused(mark, f"too many values: more than {MAX_VALUES:,}{how} "
                           "(a lab or drill file has a few hundred at most)")


def _yaml_problem(exc: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return line, f"not a text file: character U+{int(exc.character):04X} is not allowed in YAML"
    mark = getattr(exc, "problem_mark", None)
    marked: int | None = mark.line + 1 if mark is not None else None
    reason = str(getattr(exc, "problem", None) or exc).splitlines()[0]
    context = getattr(exc, "context", None)
    if isinstance(exc, yaml.composer.ComposerError) and context:
        # "expected a single document in the stream" / "but found another document", and the like.
        reason = f"{str(context).split(';')[0]} ({reason})"
    tag = re.fullmatch(r"could not determine a constructor for the tag '(.*)'", reason)
    if tag:
        shown_tag = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return marked, f"invalid YAML: tag '{shown_tag}' is not allowed (labctl reads plain values only)"
    return marked, f"invalid YAML: {reason}"


def _index_lines(
    node: yaml.Node,
    path: FieldPath,
    lines: dict[FieldPath, int],
    problems: list[Problem],
    display: str,
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                problems.append(
                    Problem(display, key_node.start_mark.line + 1, dotted(child), "duplicate key")
                )
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines, problems, display)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines, problems, display)
