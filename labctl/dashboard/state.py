"""What `labctl dashboard` shows, gathered on each poll: the lab's containers and health, the
requests per second each backend answered in the load or drill running now (from the load
generator's sample files as they grow), database roles and lag, the faults in effect and the
fault journal's marks on the timeline."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import paths
from labctl.errors import LabctlError
from labctl.experiments.timeline import Sample, parse_samples

# A run whose samples grew this recently is the one running now (looked for in the newest few).
LIVE_S = 5.0
RECENT_RUNS = 3
# Seconds of timeline the page draws, and the window a backend's "now" rate averages over.
TIMELINE_S = 90
RATE_WINDOW_S = 3
# Database status asks every node; once every few polls is enough for roles and lag.
DB_EVERY_S = 3.0


@dataclass
class SampleTail:
    """The sample files of one run folder, read as they grow (only whole new lines)."""

    folder: Path
    offsets: dict[Path, int] = field(default_factory=dict)
    per_second: dict[int, Counter[str]] = field(default_factory=dict)

    def read_new(self) -> None:
        for path in sorted(self.folder.rglob("samples-*.csv")):
            self._read(path)
        horizon = int(time.time()) - TIMELINE_S
        for second in [s for s in self.per_second if s < horizon]:
            del self.per_second[second]

    def _read(self, path: Path) -> None:
        start = self.offsets.get(path, 0)
        with open(path, "rb") as handle:
            handle.seek(start)
            chunk = handle.read()
        whole = chunk[: chunk.rfind(b"\n") + 1]
        self.offsets[path] = start + len(whole)
        for sample in parse_samples(whole.decode("utf-8", "replace").splitlines()):
            self.per_second.setdefault(int(sample.at), Counter())[_who(sample)] += 1


def _who(sample: Sample) -> str:
    return sample.answered_by if sample.ok else "failed"


def live_run(lab: str) -> Path | None:
    """The run folder whose sample files grew in the last LIVE_S seconds, if any. Run folders
    are named by their start time, so only the newest few are looked into."""
    folder = paths.runs_dir(lab)
    if not folder.is_dir():
        return None
    newest = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name)[-RECENT_RUNS:]
    grown = [(f.stat().st_mtime, run) for run in newest for f in run.rglob("samples-*.csv")]
    if not grown or time.time() - max(grown)[0] > LIVE_S:
        return None
    return max(grown)[1]


class Dashboard:
    """One lab's view, kept between polls so that sample files are read incrementally."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.tail: SampleTail | None = None
        self.db: dict[str, Any] = {"at": 0.0, "blocks": []}
        self.lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            now = time.time()
            return {"lab": self.lab, "at": round(now, 3), "containers": containers(self.lab),
                    "run": self._run(now), "faults": faults(self.lab), "marks": fault_marks(self.lab, now),
                    "db": self._db(now)}

    def _run(self, now: float) -> dict[str, Any] | None:
        folder = live_run(self.lab)
        if folder is None:
            return None
        if self.tail is None or self.tail.folder != folder:
            self.tail = SampleTail(folder)
        self.tail.read_new()
        return {"id": folder.name, **rates(self.tail.per_second, now)}

    def _db(self, now: float) -> dict[str, Any]:
        if now - float(self.db["at"]) >= DB_EVERY_S:
            self.db = {"at": now, "blocks": db_reports(self.lab)}
        return self.db


def rates(per_second: dict[int, Counter[str]], now: float) -> dict[str, Any]:
    """The timeline (answers per second by who answered) and each backend's rate just now."""
    last = int(now) - 1  # the second still being written is not whole yet
    seconds = range(last - TIMELINE_S + 1, last + 1)
    names = sorted({name for counts in per_second.values() for name in counts})
    window = [per_second.get(s, Counter()) for s in range(last - RATE_WINDOW_S + 1, last + 1)]
    return {"seconds": list(seconds),
            "series": {name: [per_second.get(s, Counter())[name] for s in seconds] for name in names},
            "now_rps": {name: round(sum(c[name] for c in window) / RATE_WINDOW_S, 1) for name in names}}


def containers(lab: str) -> list[dict[str, Any]]:
    from labctl.runtime import local_runtime

    return [{"name": s.name, "block": s.block, "kind": s.kind, "state": s.state, "health": s.health,
             "outcome": s.outcome} for s in sorted(local_runtime().containers(lab), key=lambda s: s.name)]


def faults(lab: str) -> list[dict[str, Any]]:
    from labctl.experiments.chaos import faults_in_effect

    return [{"fault": f.fault, "target": f.target, "since": round(f.at, 3)} for f in faults_in_effect(lab)]


def fault_marks(lab: str, now: float) -> list[dict[str, Any]]:
    """Injections and reverts of the last TIMELINE_S seconds, from the fault journal."""
    journal = paths.runs_dir(lab) / "chaos.jsonl"
    if not journal.is_file():
        return []
    marks = []
    for line in journal.read_text(encoding="utf-8").splitlines()[-200:]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if now - float(entry.get("time", 0)) <= TIMELINE_S:
            marks.append({"at": entry["time"], "event": entry.get("event"), "fault": entry.get("fault"),
                          "target": entry.get("target")})
    return marks


def db_reports(lab: str) -> list[dict[str, Any]]:
    """`labctl db status --json` of every database block, or why it could not be read."""
    from labctl.running import attach

    try:
        running = attach(lab).lab
        own = [r for b in running.blocks.values() if (r := b.spec.db_status(running, b)) is not None]
        if own or not running.blocks_of("db"):
            return own
        from labctl.db import status as db_status

        return [replication_table(db_status.status(running))]
    except LabctlError as exc:
        return [{"title": "database", "error": str(exc), "columns": [], "nodes": []}]


def replication_table(report: dict[str, Any]) -> dict[str, Any]:
    """The replication report of the db kind in the shape other kinds' status has."""
    return {"title": f"{report['lab']}: {report['flavor']}, {report['replication']} replication",
            "columns": ["node", "role", "read_only", "transactions", "lag_s", "error"],
            "headings": {"read_only": "read-only", "transactions": "txns", "lag_s": "lag s"},
            "nodes": report["nodes"]}
