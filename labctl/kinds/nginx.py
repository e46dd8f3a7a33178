"""Nginx as a load balancer, each of its features a switch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.durations import DURATION
from labctl.errors import LabctlError
from labctl.kinds.base import ConfigTemplate, Progress
from labctl.kinds.fragments import ALGORITHMS, LB_COMMON, SWITCH, publish
from labctl.kinds.lb import LoadBalancerKind

if TYPE_CHECKING:
    from labctl.model.lab import Block, Lab

# Files a block with `static: on` serves under /static/, from templates/nginx/static/.
STATIC_FILES = ("index.html", "catalog.json")
POLL_SECONDS = 0.05

# Nginx features, each a switch (off by default) with its settings beside it.
_FEATURES: dict[str, Any] = {
    "static": SWITCH,
    "cache": SWITCH,
    "cache_valid": DURATION,
    "gzip": SWITCH,
    "gzip_level": {"type": "integer", "minimum": 1, "maximum": 9},
    "tls": SWITCH,
    "rate_limit": SWITCH,
    "rate_limit_rate": {"type": "string", "pattern": r"^[0-9]+r/(s|m)$", "description": "a rate like 10r/s or 600r/m"},
    "rate_limit_burst": {"type": "integer", "minimum": 0, "maximum": 100000},
    "access": SWITCH,
    "access_rules": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "string",
            "pattern": r"^(allow|deny) (all|[0-9a-fA-F.:]+(/[0-9]{1,3})?)$",
            "description": "a rule like 'allow 10.0.0.0/8' or 'deny all'",
        },
    },
}

_FEATURE_DEFAULTS: dict[str, Any] = {
    "static": False,
    "cache": False,
    "cache_valid": "10s",
    "gzip": False,
    "gzip_level": 5,
    "tls": False,
    "rate_limit": False,
    "rate_limit_rate": "10r/s",
    "rate_limit_burst": 20,
    "access": False,
    "access_rules": ["allow 127.0.0.1", "deny all"],
}

_HEALTH: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_fails": {"type": "integer", "minimum": 0, "maximum": 100},
        "fail_timeout": DURATION,
        "connect_timeout": DURATION,
        "read_timeout": DURATION,
        "next_upstream": {
            "type": "array",
            "items": {
                "enum": [
                    "error", "timeout", "invalid_header", "http_500", "http_502",
                    "http_503", "http_504", "http_429", "non_idempotent", "off",
                ]
            },
        },
        "next_upstream_tries": {"type": "integer", "minimum": 0, "maximum": 32},
    },
}


class NginxKind(LoadBalancerKind):
    name = "nginx"
    properties: ClassVar[dict[str, Any]] = {
        **LB_COMMON,
        **_FEATURES,
        "publish": publish("http", "https"),
        "algorithm": {"enum": ALGORITHMS},
        "worker_processes": {"anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 1, "maximum": 64}]},
        "worker_connections": {"type": "integer", "minimum": 16, "maximum": 65536},
        "keepalive": {"type": "integer", "minimum": 0, "maximum": 1024},
        "health": _HEALTH,
    }
    defaults: ClassVar[dict[str, Any]] = {
        "algorithm": "round_robin",
        "publish": {},
        "worker_processes": "auto",
        "worker_connections": 1024,
        "keepalive": 32,
        "health": {
            "max_fails": 1,
            "fail_timeout": "10s",
            "connect_timeout": "1s",
            "read_timeout": "60s",
            "next_upstream": ["error", "timeout"],
            "next_upstream_tries": 0,
        },
        **_FEATURE_DEFAULTS,
    }
    config_files = ("nginx.conf",)

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        configs = super().config_templates(lab, block)
        if block.params.get("static"):
            configs += [(f"nginx/static/{name}.j2", f"static/{name}", {}) for name in STATIC_FILES]
        return configs

    def prepare_folder(self, lab: Lab, block: Block, folder: Path) -> None:
        if block.params.get("tls"):
            from labctl.tlscert import ensure_tls

            ensure_tls(folder / block.name, lab.name, block.service_base, lab.bind)

    def reload(self, lab: Lab, block: Block, progress: Progress) -> None:
        from labctl.runtime import local_runtime

        progress(f"reloading {block.service_base} for its new config")
        container = f"{lab.project}-{block.service_base}"
        old = _workers(container)
        result = local_runtime().exec(container, ["nginx", "-s", "reload"])
        if result.exit_code != 0:
            raise LabctlError(f"nginx reload failed in {container}: {result.output.strip()}")
        _wait_new_workers(container, old)


def _workers(container: str) -> set[str]:
    """PIDs of the Nginx workers taking new connections (not those finishing old ones)."""
    from labctl.runtime import local_runtime

    return {pid for pid, cmd in local_runtime().processes(container)
            if "worker process" in cmd and "shutting down" not in cmd}


def _wait_new_workers(container: str, old: set[str], timeout: float = 10.0) -> None:
    # `nginx -s reload` only signals the master: until it has started workers with the new
    # config, new connections still reach the old ones. A config the master rejects keeps them.
    deadline = time.monotonic() + timeout
    while (workers := _workers(container)) == set() or workers & old:
        if time.monotonic() > deadline:
            raise LabctlError(f"nginx in {container} kept its old config after a reload; "
                              f"see 'docker logs {container}'")
        time.sleep(POLL_SECONDS)


KIND = NginxKind()
