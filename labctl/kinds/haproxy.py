"""HAProxy: an HTTP or TCP load balancer over app replicas, or a MySQL router over a db block."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from labctl.durations import DURATION
from labctl.kinds.base import BlockData, ConfigTemplate, FieldProblem, Progress, blocks_of, database_blocks
from labctl.kinds.fragments import ALGORITHMS, LB_COMMON, publish
from labctl.kinds.lb import LoadBalancerKind

if TYPE_CHECKING:
    from labctl.model.lab import Block, Lab

_ROUTES: dict[str, Any] = {
    "type": "array",
    "description": "a list of {path: /prefix, backends: app block} (mode http only)",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "backends"],
        "properties": {
            "path": {"type": "string", "pattern": r"^/[A-Za-z0-9._~/-]*$",
                     "description": "a path prefix like /reports"},
            "backends": {"type": "string", "description": "the name of an app block"},
        },
    },
}

_HEALTH: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "check": {"type": "boolean"},
        "interval": DURATION,
        "fall": {"type": "integer", "minimum": 1, "maximum": 100},
        "rise": {"type": "integer", "minimum": 1, "maximum": 100},
        "connect_timeout": DURATION,
        "server_timeout": DURATION,
        "retries": {"type": "integer", "minimum": 0, "maximum": 10},
        "redispatch": {"type": "boolean"},
    },
}


class HaproxyKind(LoadBalancerKind):
    name = "haproxy"
    properties: ClassVar[dict[str, Any]] = {
        **LB_COMMON,
        # `l7`: a second HTTP endpoint, for a lab whose other haproxy block publishes `http`.
        "publish": publish("http", "stats", "writer", "reader", "l7"),
        "algorithm": {"enum": [*ALGORITHMS, "first"]},
        "mode": {"enum": ["http", "tcp"]},
        "routes": _ROUTES,
        "response_headers": {
            "type": "object",
            "description": "a mapping of header name to value (mode http only)",
            "propertyNames": {"pattern": r"^[A-Za-z0-9-]+$", "description": "a header name like X-Lb"},
            "additionalProperties": {"type": "string", "pattern": r"^[^\s\"]+$",
                                     "description": "a header value without spaces or quotes"},
        },
        "discovery": {
            "type": "object",
            "additionalProperties": False,
            "required": ["slots"],
            "description": "a mapping with slots: how many servers server-template reserves",
            "properties": {"slots": {"type": "integer", "minimum": 1, "maximum": 64}},
        },
        "health": _HEALTH,
    }
    defaults: ClassVar[dict[str, Any]] = {
        "algorithm": "round_robin",
        "mode": "http",
        "publish": {},
        "health": {
            "check": True,
            "interval": "1s",
            "fall": 2,
            "rise": 1,
            "connect_timeout": "1s",
            "server_timeout": "30s",
            "retries": 2,
            "redispatch": True,
        },
    }
    config_files = ("haproxy.cfg",)
    backend_words = "an app or db block"

    def backend_blocks(self, blocks: dict[str, BlockData]) -> list[str]:
        # A MySQL database of any kind: the kind names the router config that fits it.
        return [*blocks_of(blocks, "app"), *database_blocks(blocks)]

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        router = lab.blocks[str(block.params["backends"])].spec.mysql_router
        if router is not None:
            return [(router, "haproxy.cfg", {})]
        return super().config_templates(lab, block)

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        if endpoint in ("writer", "reader"):
            scheme = lab.blocks[str(block.params["backends"])].spec.database_scheme
            return {endpoint: f"{scheme}://{lab.bind}:{port}"}
        suffix = "/stats" if endpoint == "stats" else ""
        return {endpoint: f"http://{lab.bind}:{port}{suffix}"}

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        apps, dbs = blocks_of(blocks, "app"), database_blocks(blocks)
        return [*super().reference_problems(name, block, blocks), *_layer7_problems(name, block, apps, dbs),
                *_discovery_problems(name, block, blocks)]

    def reload(self, lab: Lab, block: Block, progress: Progress) -> None:
        from labctl.runtime import local_runtime

        progress(f"reloading {block.service_base} for its new config")
        # HAProxy's master (-W) reloads its workers on USR2.
        local_runtime().kill(f"{lab.project}-{block.service_base}", signal="SIGUSR2")


def _layer7_problems(name: str, block: BlockData, apps: list[str], dbs: list[str]) -> list[FieldProblem]:
    # tcp mode forwards bytes: it never parses a request, so it has no path and no headers.
    found: list[FieldProblem] = []
    for key, what in (("routes", "route by path"), ("response_headers", "add headers")):
        if block.get(key) and block.get("backends") in dbs:
            found.append(((name, key), f"a MySQL router cannot {what}: it speaks TCP, not HTTP"))
        elif block.get(key) and block.get("mode", "http") == "tcp":
            found.append(((name, key), f"mode tcp cannot {what}: it never reads the HTTP request (use mode: http)"))
    for index, route in enumerate(block.get("routes", [])):
        if route["backends"] not in apps:
            known = ", ".join(apps) or "none"
            found.append(((name, "routes", index, "backends"),
                          f"expected the name of an app block ({known}), got {route['backends']!r}"))
    return found


def _discovery_problems(name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
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


KIND = HaproxyKind()
