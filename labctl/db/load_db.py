"""What `labctl load` adds on a db lab: its writes checked against the primary afterwards.

A drill knows when its fault struck; a plain load does not, so the RTO is measured from the
first node that `labctl chaos` killed, stopped or paused while the load ran (read from the
lab's chaos journal). That is the workshop flow: load in one terminal, chaos and `labctl db
failover` in another, and the load's report counts what was lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labctl import paths
from labctl.db import nodes as db
from labctl.db.drill_db import present_ids
from labctl.experiments import ledger
from labctl.render import running_lab

STOPPING_FAULTS = ("kill", "stop", "pause")


def writes_report(lab_name: str, run_dir: Path, started: float, ended: float) -> dict[str, Any] | None:
    """The ledger classified against the current primary, or why it could not be; None when
    the load wrote nothing (not a db lab, or reads only)."""
    if not any(run_dir.glob(ledger.LEDGER_GLOB)):
        return None
    writes = ledger.read_ledger(run_dir)
    if not writes:
        return None
    lab = running_lab(lab_name)
    fault = first_stopping_fault(journal_lines(lab_name), set(db.db_block(lab).instances()), started, ended)
    try:
        found = present_ids(lab, ledger.prefixes(writes))
    except db.DbError as exc:
        return {"checked": False, "reason": str(exc)}
    if fault is None:
        return {"checked": True, **ledger.report(writes, found), "fault": None}
    return {"checked": True, **ledger.report(writes, found, float(fault["at"]), str(fault["target"])),
            "fault": {"fault": fault["fault"], "target": fault["target"]}}


def journal_lines(lab_name: str) -> list[dict[str, Any]]:
    path = paths.runs_dir(lab_name) / "chaos.jsonl"
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return lines


def first_stopping_fault(journal: list[dict[str, Any]], db_nodes: set[str], started: float,
                         ended: float) -> dict[str, Any] | None:
    """The first kill, stop or pause of a db node injected while the load ran."""
    hits = [e for e in journal if e.get("event") == "inject" and e.get("fault") in STOPPING_FAULTS
            and e.get("target") in db_nodes and started <= float(e.get("at", 0)) <= ended]
    return min(hits, key=lambda e: float(e["at"]), default=None)
