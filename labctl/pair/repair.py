"""Repairing a pair whose replication stopped on an error (a duplicate key, a missing row).

Skipping the failed transaction would keep both nodes' rows and leave them different for
good. labctl does what a team that wants one copy of the data does: node 2 is rebuilt as a
clone of node 1 (its writes node 1 never applied are dropped), and both channels start
again from there.
"""

from __future__ import annotations

from labctl.db.nodes import execute, wait_reachable
from labctl.db.rejoin import clone_into
from labctl.db.secrets import load_secrets
from labctl.model.lab import Block, Lab
from labctl.pair.replication import MYSQL, Progress, nodes, point_at

REBUILD_TIMEOUT_S = 120


def rebuild_second(lab: Lab, block: Block, progress: Progress) -> None:
    """Replace node 2's data with a clone of node 1's and point both channels afresh."""
    first, second = nodes(lab, block)
    progress(f"{block.name}: replication stopped on an error; rebuilding {second.name} as a clone of "
             f"{first.name} (writes only {second.name} had are dropped)")
    # Neither node may take a write until the two hold the same data again.
    for node in (first, second):
        execute(lab, node, ["SET GLOBAL super_read_only = ON", "STOP REPLICA"])
    clone = MYSQL.clone_from(first.name, load_secrets(lab.name)["root"])
    clone_into(lab, second, clone, progress)
    wait_reachable(lab, second, REBUILD_TIMEOUT_S)
    # The failed transaction is still in node 1's relay log: RESET REPLICA drops it.
    execute(lab, first, ["RESET REPLICA"])
    point_at(lab, second, first.name)
    point_at(lab, first, second.name)
