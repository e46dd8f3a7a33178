"""What the two load balancer kinds (nginx, haproxy) share: a backends block and weights."""

from __future__ import annotations

from typing import ClassVar

from labctl.kinds.base import BlockData, BlockKind, FieldProblem, blocks_of


class LoadBalancerKind(BlockKind):
    """A block that spreads requests over the containers of its `backends` block."""

    load_balancer = True
    # How the error message words the blocks a `backends:` may name.
    backend_words: ClassVar[str] = "an app block"

    def backend_blocks(self, blocks: dict[str, BlockData]) -> list[str]:
        """The blocks a `backends:` may name."""
        return blocks_of(blocks, "app")

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        targets = self.backend_blocks(blocks)
        target = block.get("backends")
        if target is None:
            return [((name,), "missing required key 'backends'")]
        if target not in targets:
            known = ", ".join(targets) or "none"
            return [((name, "backends"), f"expected the name of {self.backend_words} ({known}), got {target!r}")]
        backend = blocks[target]
        if not _replicated(backend):
            return []
        weights = block.get("weights")
        replicas = int(backend.get("replicas", 1))
        if weights is not None and len(weights) != replicas and "discovery" not in block:
            return [((name, "weights"), f"expected {replicas} weights, one per {target} replica, got {len(weights)}")]
        return []


def _replicated(block: BlockData) -> bool:
    # Weights go one per app replica; a db block's servers are its fixed nodes.
    return bool(block["kind"] == "app")
