"""The lost-write ledger: what the load's writes were told, checked against the final primary.

During a DB run every Locust process appends one JSON line per write to
ledger-<pid>.jsonl in the run folder (labctl/loadgen/db_user.py). Afterwards the ids
present on the final primary classify each write, as Jepsen's set checker does: `lost`
(acknowledged but missing), `recovered` (outcome unknown but present), `unexpected`
(present but never attempted). From the same lines come the stale reads, the write error
window, the RPO and, given the fault time, the RTO. Pure logic: the caller reads MySQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError
from labctl.experiments.timeline import percentile

ACK, FAILED, UNKNOWN = "ack", "failed", "unknown"
OUTCOMES = (ACK, FAILED, UNKNOWN)
LEDGER_GLOB = "ledger-*.jsonl"
# How many ids each list in the report keeps; the counts are always complete.
MAX_LISTED_IDS = 50
_RUN_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class LedgerError(LabctlError):
    """A ledger file is missing or cannot be read."""


@dataclass(frozen=True)
class Write:
    """One write of the ledger: its id, when it was sent and answered, and what it was told."""

    id: str
    run: str
    sent: float
    done: float
    status: int
    outcome: str
    node: str = ""
    stale: bool | None = None  # the read-back after an ack: True when the replica lacked the row
    read_node: str = ""  # who answered the read-back
    read_failed: bool = False  # a read-back was tried and got no usable answer
    read_done: float | None = None  # when the read-back's answer came (users that record it)


def write_outcome(status: int, app_outcome: str | None, refused: bool) -> str:
    """ack, failed or unknown for one POST /write, from what the client saw.

    `status` is 0 when no HTTP answer came (`refused`: the connection to the app was
    refused, so nothing was sent). The app's own "outcome" field wins when present; a 409
    means the id is already there, which the write cannot claim as its own; another 4xx
    was rejected before any database work; any other 5xx may come from a proxy that had
    already forwarded the request, so its effect is unknown.
    """
    if status == 0:
        return FAILED if refused else UNKNOWN
    if status == 200:
        return ACK if app_outcome in (ACK, None) else UNKNOWN
    if app_outcome in (FAILED, UNKNOWN):
        return app_outcome
    if 400 <= status < 500 and status != 409:
        return FAILED
    return UNKNOWN


def run_prefix(run: str) -> str:
    """The id prefix of a run's writes (ids are <run>-p<pid>-<sequence>, at most 64 chars)."""
    return _RUN_SAFE.sub("_", run)[-36:] + "-"


def write_id(run: str, process: int, sequence: int) -> str:
    """A write id unique to this run, process and sequence number."""
    return f"{run_prefix(run)}p{process}-{sequence}"


def parse_line(line: str) -> Write:
    """One ledger line (JSON) as a Write; ValueError/KeyError/TypeError when malformed."""
    data = json.loads(line)
    outcome = str(data["outcome"])
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    stale = data.get("stale")
    return Write(id=str(data["id"]), run=str(data["run"]), sent=float(data["sent"]), done=float(data["done"]),
                 status=int(data["status"]), outcome=outcome, node=str(data.get("node") or ""),
                 stale=None if stale is None else bool(stale), read_node=str(data.get("read_node") or ""),
                 read_failed="read_status" in data and stale is None,
                 read_done=float(data["read_done"]) if data.get("read_done") is not None else None)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield number, line


def read_ledger(run_dir: Path) -> list[Write]:
    """Every write recorded in a run folder's ledger files, in the order they were sent.

    A last line cut short (the process was killed mid-write) is skipped; any other bad
    line is an error naming its file and line.
    """
    files = sorted(run_dir.glob(LEDGER_GLOB))
    if not files:
        raise LedgerError(f"no write ledger ({LEDGER_GLOB}) in {run_dir}: was the load a DB write load?")
    writes: list[Write] = []
    for path in files:
        lines = list(_lines(path))
        for number, line in lines:
            try:
                writes.append(parse_line(line))
            except (ValueError, KeyError, TypeError) as exc:
                if number == lines[-1][0] and not line.endswith("\n"):
                    continue
                raise LedgerError(f"{path}:{number}: bad ledger line ({exc})") from exc
    return sorted(writes, key=lambda w: (w.sent, w.id))


def prefixes(writes: Iterable[Write]) -> list[str]:
    """The id prefixes of the runs in a ledger: the caller reads `id LIKE 'prefix%'` back."""
    return sorted({run_prefix(w.run) for w in writes})


@dataclass(frozen=True)
class Classification:
    """The ledger checked against the ids present on the final primary."""

    writes: list[Write]
    lost: list[str]
    recovered: list[str]
    unexpected: list[str]
    failed_present: list[str]

    def count(self, outcome: str) -> int:
        return sum(1 for w in self.writes if w.outcome == outcome)


def classify(writes: list[Write], present: Iterable[str]) -> Classification:
    """Lost, recovered and unexpected ids, Jepsen set-style.

    Only present ids under this ledger's run prefixes count, so rows left by earlier runs
    in the same database are not `unexpected`. `failed_present` lists writes the client
    was told had failed and that are there all the same: an outcome that lied.
    """
    runs = tuple(prefixes(writes))
    found = {i for i in present if i.startswith(runs)} if runs else set()
    attempted = {w.id for w in writes}
    by_outcome = {o: {w.id for w in writes if w.outcome == o} for o in OUTCOMES}
    return Classification(
        writes=writes,
        lost=sorted(by_outcome[ACK] - found),
        recovered=sorted(by_outcome[UNKNOWN] & found),
        unexpected=sorted(found - attempted),
        failed_present=sorted(by_outcome[FAILED] & found),
    )


def error_window(writes: list[Write]) -> dict[str, Any] | None:
    """First to last failed/unknown write (sent of the first to done of the last), or None."""
    bad = [w for w in writes if w.outcome != ACK]
    if not bad:
        return None
    first, last = min(w.sent for w in bad), max(w.done for w in bad)
    return {"start": round(first, 3), "end": round(last, 3), "duration_s": round(last - first, 3),
            "writes": len(bad)}


def rpo(writes: list[Write], lost: Iterable[str]) -> dict[str, Any]:
    """The lost acknowledged writes: how many, and the time span their acks cover."""
    lost_ids = set(lost)
    gone = [w for w in writes if w.id in lost_ids]
    if not gone:
        return {"writes": 0, "span_s": 0.0, "first_ack": None, "last_ack": None}
    first, last = min(w.done for w in gone), max(w.done for w in gone)
    return {"writes": len(gone), "span_s": round(last - first, 3), "first_ack": round(first, 3),
            "last_ack": round(last, 3)}


def rto(writes: list[Write], fault_at: float, old_node: str | None = None) -> float | None:
    """Seconds from the fault to the first ack of a write sent after it (on another node than
    `old_node` when given); None when no write was acknowledged after the fault."""
    acks = [w.done for w in writes if w.outcome == ACK and w.sent >= fault_at
            and (old_node is None or w.node != old_node)]
    return round(min(acks) - fault_at, 3) if acks else None


def steady_latency(writes: list[Write], fault_at: float | None) -> dict[str, Any]:
    """Latency of the acknowledged writes answered before the fault (all of them when there was
    none): the steady-state cost of a write on this design, p50 and p99 in ms."""
    taken = sorted((w.done - w.sent) * 1000 for w in writes
                   if w.outcome == ACK and (fault_at is None or w.done < fault_at))
    if not taken:
        return {"writes": 0, "p50": None, "p99": None}
    return {"writes": len(taken), "p50": round(percentile(taken, 0.5), 2), "p99": round(percentile(taken, 0.99), 2)}


def _listed(ids: list[str]) -> list[str]:
    return ids[:MAX_LISTED_IDS]


def report(writes: list[Write], present: Iterable[str], fault_at: float | None = None,
           old_node: str | None = None) -> dict[str, Any]:
    """The drill.json part for DB drills: write counts, RTO, RPO, stale reads and ids."""
    result = classify(writes, present)
    loss = rpo(writes, result.lost)
    return {
        "writes": {
            "attempted": len(writes), "acknowledged": result.count(ACK), "failed": result.count(FAILED),
            "unknown": result.count(UNKNOWN), "lost": len(result.lost), "recovered": len(result.recovered),
            "unexpected": len(result.unexpected), "failed_present": len(result.failed_present),
        },
        "ids": {"lost": _listed(result.lost), "recovered": _listed(result.recovered),
                "unexpected": _listed(result.unexpected), "failed_present": _listed(result.failed_present)},
        "fault_at": fault_at,
        "rto_s": rto(writes, fault_at, old_node) if fault_at is not None else None,
        "rpo_writes": loss["writes"],
        "rpo": loss,
        "write_error_window": error_window(writes),
        "steady_write_ms": steady_latency(writes, fault_at),
        "stale_reads": stale_reads(writes),
        "id_prefixes": prefixes(writes),
    }


def stale_reads(writes: list[Write]) -> dict[str, Any]:
    """Read-backs after an ack: how many answered, how many of those lacked the write, how many
    got no answer, in all and per member that was asked."""
    def counts(chosen: list[Write]) -> dict[str, int]:
        answered = [w for w in chosen if w.stale is not None]
        return {"reads": len(answered), "stale": sum(1 for w in answered if w.stale),
                "failed": sum(1 for w in chosen if w.read_failed)}

    tried = [w for w in writes if w.stale is not None or w.read_failed]
    nodes = sorted({w.read_node for w in tried if w.read_node})
    return {**counts(tried), "by_node": {n: counts([w for w in tried if w.read_node == n]) for n in nodes}}


def _rto_line(fault_at: float | None, rto_s: float | None, no_fault: str) -> str:
    if fault_at is None:
        return no_fault
    if rto_s is None:
        return "RTO: no write was acknowledged after the fault"
    return f"RTO: {rto_s:.3f} s from the fault to the first acknowledged write sent after it"


def describe(result: dict[str, Any], no_fault: str = "RTO: no fault time given") -> list[str]:
    """The report's lines for a person (report.md, the CLI): counts, then what they cost."""
    w = result["writes"]
    lines = [f"writes: {w['acknowledged']} acknowledged, {w['failed']} failed, {w['unknown']} unknown "
             f"(of {w['attempted']})",
             f"checked against the final primary: {w['lost']} lost, {w['recovered']} recovered, "
             f"{w['unexpected']} unexpected"]
    loss = result["rpo"]
    lines.append(f"RPO: {loss['writes']} acknowledged writes lost, acknowledged within {loss['span_s']:.3f} s"
                 if loss["writes"] else "RPO: no acknowledged write lost")
    lines.append(_rto_line(result.get("fault_at"), result["rto_s"], no_fault))
    window = result["write_error_window"]
    if window:
        lines.append(f"write errors: {window['writes']} over {window['duration_s']:.3f} s")
    steady = result.get("steady_write_ms") or {}
    if steady.get("writes"):
        before = "before the fault" if result.get("fault_at") is not None else "in all"
        lines.append(f"write latency {before}: p50 {steady['p50']:.1f} ms, p99 {steady['p99']:.1f} ms "
                     f"({steady['writes']} acknowledged)")
    if w["failed_present"]:
        lines.append(f"warning: {w['failed_present']} writes reported failed are present: an outcome was wrong")
    reads = result["stale_reads"]
    failed = f"; {reads['failed']} read-backs got no answer" if reads.get("failed") else ""
    lines.append(f"stale reads: {reads['stale']} of {reads['reads']} read-backs after an ack{failed}")
    return lines
