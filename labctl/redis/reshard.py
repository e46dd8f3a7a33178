"""A drill's `reshard` step: `redis-cli --cluster reshard` moves slots (and their keys, by
MIGRATE) from one master to another while the load writes, run inside the target node."""

from __future__ import annotations

import time
from typing import Any

from labctl.model.lab import Block, Lab
from labctl.redis.cluster import Progress, RedisClusterError, cluster_view, node_ports

DEFAULT_SLOTS = 1000


def reshard(lab: Lab, block: Block, options: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Move `slots` slots from `from` (default: the master with the most slots) to `to`
    (default: the one with the fewest); what moved and how long it took."""
    from labctl.runtime import local_runtime

    view = cluster_view(block)
    masters = view.masters()
    by_slots = sorted(masters, key=lambda name: (-masters[name].slots, name))
    source = options.get("from") or (by_slots[0] if by_slots else None)
    target = options.get("to") or next((name for name in reversed(by_slots) if name != source), None)
    for role, name in (("from", source), ("to", target)):
        if name not in masters:
            raise RedisClusterError(f"reshard {role}: {name!r} serves no slots right now (masters: "
                                    f"{', '.join(sorted(masters)) or 'none'})")
    if source == target:
        raise RedisClusterError(f"reshard: from and to are the same master ({source})")
    slots = int(options.get("slots", DEFAULT_SLOTS))
    container = f"{lab.project}-{target}"
    runtime = local_runtime()
    # The lab-network address, not 127.0.0.1: redis-cli hands the entry node's address to the
    # source's MIGRATE, and inside the source 127.0.0.1 is the source itself.
    address = f"{runtime.address(container).cidr.split('/')[0]}:{dict(node_ports(block))[str(target)]}"
    argv = ["redis-cli", "--cluster", "reshard", address, "--cluster-from", masters[str(source)].node_id,
            "--cluster-to", masters[str(target)].node_id, "--cluster-slots", str(slots), "--cluster-yes"]
    progress(f"{block.name}: moving {slots} slots {source} -> {target}")
    started = time.time()
    result = runtime.exec(container, argv)
    if result.exit_code != 0:
        raise RedisClusterError(f"redis-cli --cluster reshard failed (exit {result.exit_code}): "
                                f"{result.output.strip()[-600:]}")
    return {"slots": slots, "from": source, "to": target, "at": round(started, 3),
            "took_s": round(time.time() - started, 3)}
