"""YAML loading that remembers the line of every field, so errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabConfigError, Problem

FieldPath = tuple[str | int, ...]


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


def dotted(path: FieldPath) -> str:
    """Render a field path the way users write it: `app.replicas`, `lb.weights[1]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_yaml_file(path: Path, display: str) -> SourceDocument:
    """Read a YAML file into a SourceDocument; syntax errors and duplicate keys become problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabConfigError([Problem(display, None, "", f"cannot read file: {exc.strerror}")]) from exc
    return parse_yaml(text, display)


def parse_yaml(text: str, display: str) -> SourceDocument:
    """Parse YAML text into a SourceDocument."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise LabConfigError([Problem(display, line, "", f"invalid YAML: {reason}")]) from exc
    doc = SourceDocument(display, None)
    problems: list[Problem] = []
    if node is not None:
        _index_lines(node, (), doc.lines, problems, display)
        doc.data = yaml.safe_load(text)
    if problems:
        raise LabConfigError(problems)
    return doc


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
