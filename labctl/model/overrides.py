"""`--set key=value` overrides, applied to a lab's data before it is validated."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from labctl.errors import LabConfigError, Problem
from labctl.model.yamlsource import FieldPath


@dataclass(frozen=True)
class Override:
    """One `--set` argument: a dotted path and a YAML-typed value."""

    text: str
    path: tuple[str, ...]
    value: Any

    @property
    def source(self) -> str:
        return f"--set {self.text}"


def parse_overrides(items: tuple[str, ...] | list[str]) -> list[Override]:
    """Parse `key.sub=value` strings; values are read as YAML scalars (5, true, [1, 2], 'x')."""
    parsed: list[Override] = []
    problems: list[Problem] = []
    for text in items:
        key, sep, raw = text.partition("=")
        path = tuple(key.strip().split("."))
        if not sep or not all(path):
            problems.append(Problem(f"--set {text}", None, "", "expected KEY=VALUE, like app.replicas=3"))
            continue
        parsed.append(Override(text, path, _scalar(raw)))
    if problems:
        raise LabConfigError(problems)
    return parsed


def _scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: list[Override]) -> dict[str, Any]:
    """Return a copy of `data` with every override set; an unreachable path is a problem."""
    result = copy.deepcopy(data)
    problems: list[Problem] = []
    for override in overrides:
        problem = _set_path(result, override)
        if problem:
            problems.append(problem)
    if problems:
        raise LabConfigError(problems)
    return result


def _set_path(data: dict[str, Any], override: Override) -> Problem | None:
    node: Any = data
    for depth, key in enumerate(override.path[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            where = ".".join(override.path[: depth + 1])
            return Problem(override.source, None, where, "is a single value, it has no fields to set")
        node = child
    node[override.path[-1]] = override.value
    return None


def override_for(path: FieldPath, overrides: list[Override], in_file: bool) -> Override | None:
    """The override that set `path` or a parent of it (or created it, when not `in_file`)."""
    for override in reversed(overrides):
        if tuple(path[: len(override.path)]) == override.path:
            return override
        if not in_file and override.path[: len(path)] == tuple(path):
            return override
    return None
