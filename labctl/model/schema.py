"""The lab file schema, per building block, and its errors turned into plain sentences."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from labctl.model.yamlsource import FieldPath

META_KEYS = ("title", "summary", "notes", "bind")
BLOCK_KINDS = ("app", "nginx", "haproxy", "db", "dns", "client")

_DURATION = {
    "type": "string",
    "pattern": r"^[0-9]+(ms|s|m)$",
    "description": "a duration like 200ms, 5s or 1m",
}
_MEMORY = {"type": "string", "pattern": r"^[0-9]+[kmg]$", "description": "a size like 128m or 1g"}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_CPUS = {"type": "number", "exclusiveMinimum": 0, "maximum": 64}


def _publish(*endpoints: str) -> dict[str, Any]:
    """Host ports to publish, by endpoint name (the names a kind of block offers)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: _PORT for name in endpoints},
    }


_ALGORITHMS = ["round_robin", "least_conn", "ip_hash", "random"]


def _block(kind: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind"],
        "properties": {"kind": {"const": kind}, **properties},
    }


_LB_COMMON = {
    "backends": {"type": "string", "description": "the name of an app block"},
    "weights": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 256}},
    "cpus": _CPUS,
    "memory": _MEMORY,
}

APP_SCHEMA = _block(
    "app",
    {
        "replicas": {"type": "integer", "minimum": 1, "maximum": 32},
        "cpus": _CPUS,
        "memory": _MEMORY,
        "workers": {"type": "integer", "minimum": 1, "maximum": 16},
        "publish": _publish("http"),
        "database": {"type": "string", "description": "the name of a db block"},
        "database_via": {"type": "string", "description": "the name of a haproxy block in front of the db block"},
    },
)

DB_SCHEMA = _block(
    "db",
    {
        "flavor": {"enum": ["mysql", "mariadb"]},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 8},
        "replication": {"enum": ["async", "semisync"]},
        "gtid": {"const": True, "description": "true (replication always uses GTID auto-positioning)"},
        "semisync_timeout": _DURATION,
        "cpus": _CPUS,
        "memory": _MEMORY,
        "publish": {
            "type": "object",
            "additionalProperties": False,
            "required": ["mysql"],
            "description": "a mapping with mysql: the host port of node 1 (node N gets that port + N - 1)",
            "properties": {"mysql": {**_PORT, "maximum": 65000}},
        },
    },
)
# labctl reaches every node on its published port to set up and watch replication.
DB_SCHEMA["required"] = ["kind", "publish"]

_SWITCH = {"type": "boolean", "description": "on or off"}

# Nginx features, each a switch (off by default) with its settings beside it.
_NGINX_FEATURES = {
    "static": _SWITCH,
    "cache": _SWITCH,
    "cache_valid": _DURATION,
    "gzip": _SWITCH,
    "gzip_level": {"type": "integer", "minimum": 1, "maximum": 9},
    "tls": _SWITCH,
    "rate_limit": _SWITCH,
    "rate_limit_rate": {"type": "string", "pattern": r"^[0-9]+r/(s|m)$", "description": "a rate like 10r/s or 600r/m"},
    "rate_limit_burst": {"type": "integer", "minimum": 0, "maximum": 100000},
    "access": _SWITCH,
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

NGINX_SCHEMA = _block(
    "nginx",
    {
        **_LB_COMMON,
        **_NGINX_FEATURES,
        "publish": _publish("http", "https"),
        "algorithm": {"enum": _ALGORITHMS},
        "worker_processes": {
            "anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 1, "maximum": 64}]
        },
        "worker_connections": {"type": "integer", "minimum": 16, "maximum": 65536},
        "keepalive": {"type": "integer", "minimum": 0, "maximum": 1024},
        "health": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_fails": {"type": "integer", "minimum": 0, "maximum": 100},
                "fail_timeout": _DURATION,
                "connect_timeout": _DURATION,
                "read_timeout": _DURATION,
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
        },
    },
)

HAPROXY_SCHEMA = _block(
    "haproxy",
    {
        **_LB_COMMON,
        # `l7`: a second HTTP endpoint, for a lab whose other haproxy block publishes `http`.
        "publish": _publish("http", "stats", "writer", "reader", "l7"),
        "algorithm": {"enum": [*_ALGORITHMS, "first"]},
        "mode": {"enum": ["http", "tcp"]},
        "routes": {
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
        },
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
        "health": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "check": {"type": "boolean"},
                "interval": _DURATION,
                "fall": {"type": "integer", "minimum": 1, "maximum": 100},
                "rise": {"type": "integer", "minimum": 1, "maximum": 100},
                "connect_timeout": _DURATION,
                "server_timeout": _DURATION,
                "retries": {"type": "integer", "minimum": 0, "maximum": 10},
                "redispatch": {"type": "boolean"},
            },
        },
    },
)

_LABEL = {"type": "string", "pattern": r"^[a-z][a-z0-9-]{0,62}$", "description": "a DNS label like app"}

DNS_SCHEMA = _block(
    "dns",
    {
        "records": {"type": "string", "description": "the name of an app block"},
        "name": _LABEL,
        "zone": {
            "type": "string",
            "pattern": r"^([a-z][a-z0-9-]{0,62}\.)+[a-z]{2,63}$",
            "description": "a domain like lab.test",
        },
        "ttl": {"type": "integer", "minimum": 0, "maximum": 86400},
        "subnet": {
            "type": "string",
            "pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/(1[6-9]|2[0-4])$",
            "description": "an IPv4 network from /16 to /24 like 10.213.130.0/24",
        },
    },
)

CLIENT_SCHEMA = _block(
    "client",
    {
        "dns": {"type": "string", "description": "the name of a dns block"},
        "connect_timeout": _DURATION,
        "read_timeout": _DURATION,
    },
)

BLOCK_SCHEMAS: dict[str, dict[str, Any]] = {
    "app": APP_SCHEMA,
    "nginx": NGINX_SCHEMA,
    "haproxy": HAPROXY_SCHEMA,
    "db": DB_SCHEMA,
    "dns": DNS_SCHEMA,
    "client": CLIENT_SCHEMA,
}

META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "summary"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "summary": {"type": "string", "minLength": 1},
        "notes": {"type": "string", "description": "the notes section this lab teaches"},
        "bind": {
            "type": "string",
            "pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$",
            "description": "an IPv4 address like 127.0.0.1",
        },
    },
}


def schema_errors(schema: dict[str, Any], data: Any) -> list[tuple[FieldPath, str]]:
    """Validate `data` and return (field path, sentence) for every problem, deduplicated."""
    found: dict[FieldPath, str] = {}
    validator = Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        for path, sentence in _explain(error):
            found.setdefault(path, sentence)
    return list(found.items())


def _explain(error: ValidationError) -> Iterable[tuple[FieldPath, str]]:
    path: FieldPath = tuple(error.absolute_path)
    schema: dict[str, Any] = dict(error.schema) if isinstance(error.schema, dict) else {}
    instance: Any = error.instance
    if error.validator == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        for key in sorted(set(instance) - set(allowed)):
            yield (*path, key), unknown_key_sentence(key, allowed)
    elif error.validator == "required":
        present = instance if isinstance(instance, dict) else {}
        required: Any = error.validator_value
        for key in required:
            if key not in present:
                yield path, f"missing required key '{key}'"
    else:
        yield path, f"expected {describe(schema)}, got {shown(instance)}"


def unknown_key_sentence(key: str, allowed: Iterable[str]) -> str:
    """'unknown key' with a did-you-mean when a known key is close enough."""
    options = sorted(allowed)
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}', did you mean '{close[0]}'?"
    return f"unknown key '{key}' (known keys: {', '.join(options)})"


def describe(schema: dict[str, Any]) -> str:
    """What a schema expects, in words."""
    if "description" in schema and "properties" not in schema:
        return str(schema["description"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    if "anyOf" in schema:
        return " or ".join(describe(sub) for sub in schema["anyOf"])
    return _describe_type(schema)


def _describe_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if kind in ("integer", "number"):
        noun = "an integer" if kind == "integer" else "a number"
        return noun + _bounds(schema)
    if kind == "array":
        return "a list of " + _plural(describe(schema.get("items", {})))
    return {"string": "a string", "boolean": "true or false", "object": "a mapping"}.get(
        str(kind), "a valid value"
    )


def _bounds(schema: dict[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if "exclusiveMinimum" in schema:
        text = f" > {schema['exclusiveMinimum']}"
        return text + (f" and <= {high}" if high is not None else "")
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            return text[len(article):] + "s"
    return text


def shown(value: Any) -> str:
    """A value as it appears in an error: strings quoted, containers named."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


_LB_HEALTH_DEFAULTS: dict[str, dict[str, Any]] = {
    "nginx": {
        "max_fails": 1,
        "fail_timeout": "10s",
        "connect_timeout": "1s",
        "read_timeout": "60s",
        "next_upstream": ["error", "timeout"],
        "next_upstream_tries": 0,
    },
    "haproxy": {
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

_NGINX_FEATURE_DEFAULTS: dict[str, Any] = {
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

BLOCK_DEFAULTS: dict[str, dict[str, Any]] = {
    "app": {"replicas": 1, "workers": 2, "publish": {}},
    "nginx": {
        "algorithm": "round_robin",
        "publish": {},
        "worker_processes": "auto",
        "worker_connections": 1024,
        "keepalive": 32,
        "health": _LB_HEALTH_DEFAULTS["nginx"],
        **_NGINX_FEATURE_DEFAULTS,
    },
    "db": {
        "flavor": "mysql",
        "replicas": 2,
        "replication": "async",
        "gtid": True,
        "semisync_timeout": "10s",
    },
    "haproxy": {
        "algorithm": "round_robin",
        "mode": "http",
        "publish": {},
        "health": _LB_HEALTH_DEFAULTS["haproxy"],
    },
    "dns": {"zone": "lab.test", "ttl": 5, "subnet": "10.213.130.0/24"},
    "client": {"connect_timeout": "500ms", "read_timeout": "2s"},
}


def with_defaults(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """A block's parameters with every default filled in (one level of nesting deep)."""
    merged: dict[str, Any] = {}
    for key, default in BLOCK_DEFAULTS.get(kind, {}).items():
        given = params.get(key)
        if isinstance(default, dict) and isinstance(given, dict):
            merged[key] = {**default, **given}
        else:
            merged[key] = default if given is None else given
    return {**params, **merged}
