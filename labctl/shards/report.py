"""Per-shard figures from the shard user's lines (shard-*.jsonl): writes/s, p95 and errors by
shard, keyed against fan-out latency; in `labctl load` and in drills (kill-shard)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from labctl.experiments.events import DrillEvents
from labctl.experiments.timeline import percentile
from labctl.kinds.base import Expectation
from labctl.model.lab import Block

GLOB = "shard-*.jsonl"
OPS = ("write", "keyed", "fan-out")


def read_lines(run_dir: Path) -> list[dict[str, Any]]:
    """Every request the shard user recorded in a run folder (a torn last line is skipped)."""
    found = []
    for path in sorted(run_dir.glob(GLOB)):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def _figures(entries: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    ok = sorted(float(e["ms"]) for e in entries if e["ok"])
    return {"requests": len(entries), "ok": len(ok), "errors": len(entries) - len(ok),
            "per_s": round(len(ok) / seconds, 1), "p50_ms": percentile(ok, 0.5), "p95_ms": percentile(ok, 0.95)}


def behind_spider(block: Block, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries with the shard their key's partition lives on: behind Spider the app names only
    the front, so a write is counted on the shard Spider's partition definition sends it to
    (`labctl db status` counts the rows each shard really holds)."""
    from labctl.kinds.shards import has_spider, shard_map
    from labctl.shards.spider import spider_shard_index

    if not has_spider(block):
        return entries
    found, names = shard_map(block), block.instances()
    return [{**e, "shard": names[spider_shard_index(found, int(e["key"]))]} if e.get("key") is not None else e
            for e in entries]


def summarize(block: Block, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Writes per shard (with share of the acknowledged ones) and latency per operation."""
    if not entries:
        return {}
    entries = behind_spider(block, entries)
    seconds = max(max(e["t"] for e in entries) - min(e["t"] for e in entries), 1e-9)
    writes = [e for e in entries if e["op"] == "write"]
    by_shard: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in writes:
        by_shard[e["shard"] or "no answer"].append(e)
    acked = max(sum(1 for e in writes if e["ok"]), 1)
    shards = {}
    for name in [*block.instances(), *sorted(set(by_shard) - set(block.instances()))]:
        figures = _figures(by_shard.get(name, []), seconds)
        shards[name] = {**figures, "share": round(figures["ok"] / acked, 4)}
    ops = {op: _figures([e for e in entries if e["op"] == op], seconds) for op in OPS}
    return {"strategy": block.params["strategy"], "front": block.params["front"], "seconds": round(seconds, 1),
            "writes_by_shard": shards, "by_operation": ops}


def tables(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The two tables `labctl load` prints: writes per shard, and latency per operation."""
    shard_rows = [[name, str(f["ok"]), f"{f['share']:.1%}", f"{f['per_s']:.0f}", f"{f['p95_ms']:.1f}", str(f["errors"])]
                  for name, f in report["writes_by_shard"].items()]
    op_rows = [[op, str(f["requests"]), str(f["errors"]), f"{f['p50_ms']:.1f}", f"{f['p95_ms']:.1f}"]
               for op, f in report["by_operation"].items()]
    return [
        {"title": f"writes per shard (strategy {report['strategy']}, routed by {report.get('front', 'app')})",
         "columns": ["shard", "writes ok", "share", "writes/s", "p95 ms", "errors"], "rows": shard_rows},
        {"title": "keyed vs fan-out (one shard vs every shard)",
         "columns": ["operation", "requests", "errors", "p50 ms", "p95 ms"], "rows": op_rows},
    ]


def load_report(block: Block, run_dir: Path) -> dict[str, Any]:
    """What a `labctl load` run adds to summary.json: the per-shard report and its tables."""
    report = summarize(block, read_lines(run_dir))
    return {"shards": report, "tables": tables(report)} if report else {}


class ShardDrill:
    """A drill's per-shard part: which shard was killed, and errors by shard."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self.killed: list[str] = []

    def subscribe(self, events: DrillEvents) -> None:
        events.fault_applied.add_listener(self._on_fault)
        events.healed.add_listener(self._on_healed)

    def _on_fault(self, fault: dict[str, Any]) -> None:
        if fault["target"] in self.block.instances():
            self.killed.append(str(fault["target"]))

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        report = summarize(self.block, read_lines(run_dir))
        if not report:
            return
        live = {n: f for n, f in report["writes_by_shard"].items() if n in self.block.instances()
                and n not in self.killed}
        report["faulted_shards"] = self.killed
        report["live_shard_errors"] = sum(f["errors"] for f in live.values())
        report["faulted_shard_errors"] = sum(report["writes_by_shard"].get(n, {}).get("errors", 0) for n in self.killed)
        results["shards"] = report


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Drill rows: each shard's writes and errors, and keyed against fan-out latency."""
    shards = report.get("shards")
    if not shards:
        return []
    rows = [(f"writes on {name}", f"{f['ok']} ok, {f['errors']} failed, p95 {f['p95_ms']:.0f} ms",
             "killed" if name in shards.get("faulted_shards", []) else "")
            for name, f in shards["writes_by_shard"].items()]
    for op in ("keyed", "fan-out"):
        f = shards["by_operation"][op]
        rows.append((f"{op} reads", f"{f['requests']} ({f['errors']} failed), p50 {f['p50_ms']:.1f} ms, "
                     f"p95 {f['p95_ms']:.1f} ms", "a fan-out needs every shard"))
    return rows


def expectations() -> dict[str, Expectation]:
    """Writes to the shards no fault touched fail at most this often; the killed shard's at least."""
    return {
        "max_live_shard_errors": Expectation(
            {"type": "integer", "minimum": 0}, lambda m: (m.get("shards") or {}).get("live_shard_errors"),
            lambda e, o: o is not None and o <= e),
        "min_faulted_shard_errors": Expectation(
            {"type": "integer", "minimum": 0}, lambda m: (m.get("shards") or {}).get("faulted_shard_errors"),
            lambda e, o: o is not None and o >= e),
    }
