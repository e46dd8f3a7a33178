"""Schema pieces that several block kinds share (durations: labctl/durations.py)."""

from __future__ import annotations

from typing import Any

from labctl.durations import DRILL_DURATION

MEMORY: dict[str, Any] = {"type": "string", "pattern": r"^[0-9]+[kmg]$", "description": "a size like 128m or 1g"}
PORT: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 65535}
CPUS: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0, "maximum": 64}
SWITCH: dict[str, Any] = {"type": "boolean", "description": "on or off"}
ALGORITHMS = ["round_robin", "least_conn", "ip_hash", "random"]


def publish(*endpoints: str) -> dict[str, Any]:
    """Host ports to publish, by endpoint name (the names a kind of block offers)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: PORT for name in endpoints},
    }


def node_publish(endpoint: str, node: str) -> dict[str, Any]:
    """`publish` of a block whose nodes each get a host port: `endpoint` is node 1's."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [endpoint],
        "description": f"a mapping with {endpoint}: the host port of {node} 1 ({node} N gets that port + N - 1)",
        "properties": {endpoint: {**PORT, "maximum": 65000}},
    }


LB_COMMON: dict[str, Any] = {
    "backends": {"type": "string", "description": "the name of an app block"},
    "weights": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 256}},
    "cpus": CPUS,
    "memory": MEMORY,
}


# The drill step every clustered database kind takes: a client per node updating the same hot
# rows for `for` (default 8s), straight on each node's published port; `through` names the
# nodes (default: the first two).
CONFLICTING_UPDATES: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "properties": {
        "through": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9_-]+$"},
                    "minItems": 2, "uniqueItems": True},
        "rows": {"type": "integer", "minimum": 1, "maximum": 1000},
        "for": DRILL_DURATION}}
