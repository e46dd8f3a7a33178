"""Conflicting updates in a multi-primary group: clients that each update the same few rows
through a different member, as fast as they can, and what the group made of it: commits,
certification failures, deadlocks, the group's own conflict counter, and whether every
member ends up with the same rows.

Each update is one transaction, `UPDATE labctl.hot SET n = n + 1` over the whole hot set, so
every committed update adds exactly 1 to every hot row: the rows' sum after the drill is
the count of committed updates times the rows, on every member, or an update was lost."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mysql.connector

from labctl.db.nodes import BackgroundWatch, DbError, Node, connect, execute, run_sql
from labctl.model.lab import Lab

# ER_TRANSACTION_ROLLBACK_DURING_COMMIT: "Plugin instructed the server to rollback the current
# transaction": a member's certification found a concurrent update of the same rows committed first.
CERTIFICATION_ERRNO = 3101
DEADLOCK_ERRNO = 1213
LOCK_WAIT_ERRNO = 1205
COMMIT_ERRNO = 1180
OUTCOMES = ("committed", "certification", "deadlock", "lock_wait", "other")
HOT_TABLE = "CREATE TABLE IF NOT EXISTS labctl.hot (id INT PRIMARY KEY, n BIGINT NOT NULL)"
CHECKSUM_QUERY = ("SELECT COUNT(*) AS rows_, COALESCE(SUM(n), 0) AS total, "
                  "COALESCE(BIT_XOR(CRC32(CONCAT_WS(':', id, n))), 0) AS crc FROM labctl.hot")
# Each member certifies every transaction of the group, so each counts every conflict.
CONFLICTS_QUERY = ("SELECT COUNT_CONFLICTS_DETECTED AS conflicts, COUNT_TRANSACTIONS_CHECKED AS checked "
                   "FROM performance_schema.replication_group_member_stats WHERE MEMBER_ID = @@server_uuid")
CLIENT_TIMEOUT_S = 10
AGREE_WITHIN_S = 30.0


def outcome_of(errno: int | None, message: str = "") -> str:
    """What one update's error (None: it committed) counts as."""
    if errno is None:
        return "committed"
    # InnoDB's deadlock can also surface at commit: 1180 "Got error 149 - 'Lock deadlock; ...'".
    if errno == COMMIT_ERRNO and "deadlock" in message.lower():
        return "deadlock"
    return {CERTIFICATION_ERRNO: "certification", DEADLOCK_ERRNO: "deadlock",
            LOCK_WAIT_ERRNO: "lock_wait"}.get(errno, "other")


class HotRowClient(BackgroundWatch):
    """One client, connected straight to one member, updating the whole hot set back to back
    until stopped or until `until` (epoch seconds)."""

    name = "labctl-hot-row-client"

    def __init__(self, lab: Lab, node: Node, rows: int, until: float) -> None:
        super().__init__()
        self.lab, self.node, self.until = lab, node, until
        self.statement = f"UPDATE labctl.hot SET n = n + 1 WHERE id BETWEEN 1 AND {int(rows)}"
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.errors: dict[str, int] = {}

    def run(self) -> None:
        connection: Any = None
        while not self.stopping.is_set() and time.time() < self.until:
            try:
                connection = connection or connect(self.lab, self.node, 2, user="app",
                                                   read_timeout=CLIENT_TIMEOUT_S)
                run_sql(connection, self.statement)
                self.counts["committed"] += 1
            except mysql.connector.Error as exc:
                self._count(exc.errno, exc.msg or str(exc))
                connection = _keep_if_alive(connection)
            except DbError as exc:  # the member did not take the connection
                self._count(None, str(exc), outcome="other")
                time.sleep(0.2)
        with contextlib.suppress(mysql.connector.Error, OSError, AttributeError):
            connection.close()

    def _count(self, errno: int | None, message: str, outcome: str | None = None) -> None:
        found = outcome or outcome_of(errno, message)
        self.counts[found] += 1
        key = f"{errno or '-'} {message[:100]}"
        self.errors[key] = self.errors.get(key, 0) + 1

    def report(self) -> dict[str, Any]:
        attempted = sum(self.counts.values())
        return {"node": self.node.name, "attempted": attempted, **self.counts, "errors": self.errors}


def _keep_if_alive(connection: Any) -> Any:
    # A refused commit leaves the session usable; a lost connection must be made again.
    try:
        return connection if connection is not None and connection.is_connected() else None
    except (mysql.connector.Error, OSError):
        return None


def reset_hot_rows(lab: Lab, node: Node, rows: int) -> None:
    """The hot set, every row at 0, written through one member (the group takes it everywhere)."""
    values = ", ".join(f"({i}, 0)" for i in range(1, rows + 1))
    execute(lab, node, [HOT_TABLE, "DELETE FROM labctl.hot", f"INSERT INTO labctl.hot (id, n) VALUES {values}"], 30)


def _ask_each(lab: Lab, members: list[Node], query: str) -> dict[str, dict[str, Any] | None]:
    """One query's first row on every member at once (None: it did not answer)."""
    def one(node: Node) -> dict[str, Any] | None:
        try:
            connection = connect(lab, node, 3, read_timeout=5)
        except DbError:
            return None
        try:
            rows = run_sql(connection, query)
            return rows[0] if rows else None
        except mysql.connector.Error:
            return None
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(members)) as pool:
        return dict(zip((m.name for m in members), pool.map(one, members), strict=True))


def checksums(lab: Lab, members: list[Node]) -> dict[str, dict[str, int] | None]:
    """Each member's rows, sum and checksum of the hot set (None: it did not answer)."""
    return {name: None if row is None else {"rows": int(row["rows_"]), "sum": int(row["total"]),
                                            "crc": int(row["crc"])}
            for name, row in _ask_each(lab, members, CHECKSUM_QUERY).items()}


def agreeing(found: dict[str, dict[str, int] | None]) -> bool:
    """Every member answered with the same rows."""
    values = list(found.values())
    return bool(values) and None not in values and all(v == values[0] for v in values)


def wait_agreement(lab: Lab, members: list[Node], timeout: float = AGREE_WITHIN_S) -> dict[str, Any]:
    """Ask every member until they agree on the hot set (each applies what the group certified
    at its own pace) or `timeout` passes; what each holds, and how long agreeing took."""
    started = time.monotonic()
    while True:
        found = checksums(lab, members)
        if agreeing(found) or time.monotonic() - started > timeout:
            return {"agree": agreeing(found), "after_s": round(time.monotonic() - started, 2), "members": found}
        time.sleep(0.5)


def conflict_counters(lab: Lab, members: list[Node]) -> dict[str, int | None]:
    """Each member's COUNT_CONFLICTS_DETECTED (None: it did not answer)."""
    return {name: None if row is None else int(row["conflicts"])
            for name, row in _ask_each(lab, members, CONFLICTS_QUERY).items()}


def conflict_report(clients: list[dict[str, Any]], rows: int, seconds: float,
                    before: dict[str, int | None], after: dict[str, int | None],
                    agreement: dict[str, Any]) -> dict[str, Any]:
    """The drill's figures: per client and in total what happened to the updates, the share the
    group refused, its own conflict counter's growth, whether the members agree, and updates
    lost (committed but missing from the rows' sum)."""
    totals = {key: sum(int(c[key]) for c in clients) for key in ("attempted", *OUTCOMES)}
    refused = totals["attempted"] - totals["committed"]
    detected = {name: (after.get(name) or 0) - value if value is not None and after.get(name) is not None
                else None for name, value in before.items()}
    sums = {v["sum"] for v in (agreement.get("members") or {}).values() if v}
    held = next(iter(sums)) if len(sums) == 1 else None
    expected = totals["committed"] * rows
    return {"rows": rows, "seconds": round(seconds, 2), "clients": clients, "totals": totals,
            "refused": refused,
            "refused_share": round(refused / totals["attempted"], 4) if totals["attempted"] else None,
            "conflicts_detected": detected, "agreement": agreement, "expected_sum": expected, "sum": held,
            # A commit whose answer was lost (the connection dropped) may still have been applied.
            "lost_updates": None if held is None else max(0, expected - held) // max(1, rows),
            "applied_unacknowledged": None if held is None else max(0, held - expected) // max(1, rows)}


class ConflictRun:
    """Clients on the given members updating the same hot rows until stopped; before they
    start, the hot set reset and the group's conflict counters read; afterwards the report."""

    def __init__(self, lab: Lab, members: list[Node], through: list[Node], rows: int, seconds: float | None) -> None:
        self.lab, self.members, self.through, self.rows, self.seconds = lab, members, through, rows, seconds
        self.before: dict[str, int | None] = {}
        self.clients: list[HotRowClient] = []
        self.started = self.ended = 0.0

    def start(self) -> None:
        """Reset the hot set, read the counters, start one client per member."""
        reset_hot_rows(self.lab, self.through[0], self.rows)
        # A client on a member that has not applied the reset yet would update fewer rows.
        wait_agreement(self.lab, self.members)
        self.before = conflict_counters(self.lab, self.members)
        self.started = time.time()
        until = self.started + self.seconds if self.seconds else float("inf")
        self.clients = [HotRowClient(self.lab, node, self.rows, until) for node in self.through]
        for client in self.clients:
            client.start()

    def stop(self) -> None:
        for client in self.clients:
            client.stop(timeout=CLIENT_TIMEOUT_S + 5)
        self.ended = self.ended or min(time.time(), *(c.until for c in self.clients))

    def report(self) -> dict[str, Any]:
        """Once every client has stopped: the counters again, and the members' rows once they agree."""
        self.stop()
        after = conflict_counters(self.lab, self.members)
        agreement = wait_agreement(self.lab, self.members)
        seconds = self.ended - self.started
        return conflict_report([c.report() for c in self.clients], self.rows, seconds, self.before, after, agreement)


def report_rows(conflict: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows for the conflicting updates."""
    totals = conflict["totals"]
    share = conflict["refused_share"]
    rows = [(f"updates via {c['node']}", f"{c['committed']} committed, {c['certification']} refused by "
             f"certification, {c['deadlock']} deadlocks, {c['lock_wait'] + c['other']} other errors",
             f"one client on {c['node']}'s own port, UPDATE of all {conflict['rows']} hot rows, back to back")
            for c in conflict["clients"]]
    rows.append(("refused share", f"{'-' if share is None else f'{100 * share:.1f} %'} of {totals['attempted']} "
                 f"updates ({conflict['refused']} refused)", f"over {conflict['seconds']} s of two members "
                 "updating the same rows"))
    detected = conflict["conflicts_detected"]
    rows.append(("conflicts detected", ", ".join(f"{name} +{'-' if n is None else n}" for name, n in detected.items()),
                 "performance_schema.replication_group_member_stats.COUNT_CONFLICTS_DETECTED, after minus before"))
    agreement = conflict["agreement"]
    rows.append(("members agree", _agreement_value(agreement), "rows, sum and checksum of labctl.hot on every member"))
    lost = conflict["lost_updates"]
    rows.append(("lost updates", "-" if lost is None else str(lost), f"committed updates x {conflict['rows']} rows "
                 f"= {conflict['expected_sum']}, against the rows' sum"))
    return rows


def _agreement_value(agreement: dict[str, Any]) -> str:
    members = agreement.get("members") or {}
    if agreement.get("agree"):
        first = next(iter(members.values()))
        return f"yes, after {agreement['after_s']} s: {len(members)} members, sum {first['sum']}, crc {first['crc']}"
    held = {name: "unreachable" if v is None else f"sum {v['sum']} crc {v['crc']}" for name, v in members.items()}
    return "NO: " + ", ".join(f"{name} {value}" for name, value in held.items())
