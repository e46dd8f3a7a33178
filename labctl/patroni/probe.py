"""A probe on every node of a Patroni cluster, straight to its published postgres port (not
through HAProxy): one INSERT every PROBE_INTERVAL_S, so a drill sees what a node cut off from
the others still accepts from a client that can reach it, and until when."""

from __future__ import annotations

import contextlib
import itertools
import time
from typing import Any

import pg8000.native

from labctl.db.nodes import BackgroundWatch
from labctl.model.lab import Block, Lab
from labctl.patroni.cluster import PatroniError, connect

PROBE_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 2.0
PROBE_PREFIX = "probe-"


class NodeProbe(BackgroundWatch):
    """Every PROBE_INTERVAL_S, one INSERT on this node, on a connection kept between probes
    and opened again after any error."""

    name = "labctl-patroni-probe"

    def __init__(self, lab: Lab, block: Block, node: str, run: str) -> None:
        super().__init__()
        self.lab, self.block, self.node = lab, block, node
        self.samples: list[dict[str, Any]] = []
        self.connection: pg8000.native.Connection | None = None
        self.ids = (f"{PROBE_PREFIX}{run}-{node}-{n}" for n in itertools.count(1))

    def run(self) -> None:
        try:
            while not self.stopping.wait(PROBE_INTERVAL_S):
                self.samples.append(self._probe())
        finally:
            self._drop()

    def _probe(self) -> dict[str, Any]:
        sample: dict[str, Any] = {"node": self.node, "id": next(self.ids), "at": time.time()}
        try:
            if self.connection is None:
                self.connection = connect(self.lab, self.block, self.node, PROBE_TIMEOUT_S)
            self.connection.run("INSERT INTO labctl.writes (id, served_by) VALUES (:id, :node)",
                                id=sample["id"], node=self.node)
            sample["ok"] = True
        except (PatroniError, pg8000.native.Error, OSError) as exc:
            sample.update(ok=False, error=str(exc)[:160])
            self._drop()
        sample["done"] = time.time()
        return sample

    def _drop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(pg8000.native.Error, OSError):
                self.connection.close()
        self.connection = None


def cut_off_writes(probe: NodeProbe, start: float, end: float, present: set[str]) -> dict[str, Any]:
    """What the cut-off node did with the probe's INSERTs sent while it was cut off: accepted
    (and how many of those the final primary lacks), refused, and the last one it accepted."""
    window = [s for s in probe.samples if start <= s["at"] <= end]
    accepted = [s for s in window if s["ok"]]
    return {"node": probe.node, "sent": len(window), "accepted": len(accepted),
            "accepted_then_lost": sum(1 for s in accepted if s["id"] not in present),
            "refused": len(window) - len(accepted),
            "last_accepted_s": round(accepted[-1]["done"] - start, 3) if accepted else None,
            "probe_interval_s": PROBE_INTERVAL_S}
