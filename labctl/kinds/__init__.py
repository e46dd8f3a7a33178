"""Block kinds as plugins: the registry maps a kind's name to its `BlockKind`.

Adding a kind is one module with a `BlockKind` subclass, its templates (templates/blocks/
<kind>.yaml.j2 and templates/<kind>/), an image folder if it needs its own image, and one
line here; a kind kept outside labctl (a test's, an instructor's) calls `register` instead.
"""

from __future__ import annotations

from labctl.errors import LabctlError
from labctl.kinds import (
    app,
    db,
    dns,
    etcd,
    galera,
    group,
    haproxy,
    keepalived,
    link,
    master_master,
    nginx,
    patroni,
    redis,
    shards,
)
from labctl.kinds.base import BlockKind

REGISTRY: dict[str, BlockKind] = {
    kind.name: kind for kind in (app.KIND, nginx.KIND, haproxy.KIND, db.KIND, dns.KIND, dns.CLIENT,
                              etcd.KIND, galera.KIND, group.KIND, master_master.KIND, shards.KIND,
                              redis.KIND, patroni.KIND, keepalived.KIND, link.KIND)
}


def register(kind: BlockKind) -> None:
    """Add a kind (replacing one of the same name)."""
    REGISTRY[kind.name] = kind


def unregister(name: str) -> None:
    """Remove a kind added with `register` (tests)."""
    REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """Every kind's name, in registration order."""
    return tuple(REGISTRY)


def kind_of(name: str) -> BlockKind:
    """The kind registered under `name`."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise LabctlError(f"unknown block kind {name!r} (kinds: {', '.join(REGISTRY)})") from None
