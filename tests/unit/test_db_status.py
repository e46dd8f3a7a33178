"""`labctl db status` without a server: the primary is read after its replicas."""

from __future__ import annotations

import pytest

from labctl.db import nodes as db
from labctl.db import status as db_status
from labctl.model.lab import load_lab


def state(node: db.Node, transactions: int, replica: bool) -> db.NodeState:
    return db.NodeState(node, reachable=True, read_only=replica, transactions=transactions,
                        gtid_executed=f"uuid:1-{transactions}",
                        replica={"Source_Host": "db-1", "Replica_IO_Running": "Yes"} if replica else {})


def test_the_primary_is_read_again_after_the_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = load_lab("db-replication")
    primary, *replicas = db.nodes(lab)
    reads: list[str] = []
    # Writes go on while the nodes are read: each read sees one more transaction than the last.
    committed = iter(range(12_123, 12_200))

    def read_state(_lab: object, node: db.Node, timeout: float = 2.0) -> db.NodeState:
        reads.append(node.name)
        return state(node, next(committed), replica=node != primary)

    monkeypatch.setattr(db, "read_state", read_state)
    report = db_status.status(lab)
    assert reads == ["db-1", "db-2", "db-3", "db-1"]
    counts = {row["node"]: row["transactions"] for row in report["nodes"]}
    assert counts == {"db-1": 12_126, "db-2": 12_124, "db-3": 12_125}
    assert all(counts["db-1"] >= counts[r.name] for r in replicas)
    assert report["primary"] == "db-1"


def test_no_second_read_without_a_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = load_lab("db-replication")
    reads: list[str] = []

    def read_state(_lab: object, node: db.Node, timeout: float = 2.0) -> db.NodeState:
        reads.append(node.name)
        return db.NodeState(node, reachable=False, error="not answering")

    monkeypatch.setattr(db, "read_state", read_state)
    assert db_status.status(lab)["primary"] is None and reads == ["db-1", "db-2", "db-3"]
