"""`labctl db restore`: load a backup's dump into the primary, then replay its binary logs from
the backup's position up to a point in time or up to a GTID. Both go through the primary's own
binary log, so the replicas get the restored data through replication."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mysql.connector

from labctl.db import backup as backups
from labctl.db import nodes as db
from labctl.db.backup import ROOT_LOGIN, Backup, BackupError, container_of
from labctl.db.binlog import Transaction, binlog_index, transactions, with_gtid
from labctl.db.flavors import Flavor
from labctl.errors import UsageError
from labctl.model.lab import Lab
from labctl.runtime import local_runtime

Progress = Callable[[str], None]
REPLICA_CATCH_UP_S = 60
# mysqldump turns the binary log off for its own session (it expects to be loaded into a new
# server along with GTID_PURGED); a restore must be logged for the replicas to get it.
_UNLOGGED = ("SET @@SESSION.SQL_LOG_BIN= 0;", "SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;")


@dataclass(frozen=True)
class StopPoint:
    """Where the replay stops: before a GTID (found at file:position), at a time, or at the end."""

    before_gtid: str | None = None
    to_time: float | None = None
    file: str | None = None
    position: int | None = None

    def options(self) -> list[str]:
        if self.position is not None:
            return [f"--stop-position={self.position}"]
        if self.to_time is not None:
            stamp = datetime.fromtimestamp(self.to_time, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            return [f"--stop-datetime={stamp}"]
        return []

    def to_json(self) -> dict[str, Any]:
        when = None if self.to_time is None else backups.iso_utc(self.to_time)
        return {"before_gtid": self.before_gtid, "to_time": when, "file": self.file, "position": self.position}


def parse_time(text: str) -> float:
    """`--to-time`: 'YYYY-MM-DD HH:MM:SS' (or with a T, or HH:MM:SS today), UTC unless it names
    an offset, or epoch seconds."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    if len(value) <= 8 and value.count(":") == 2:
        value = datetime.now(timezone.utc).strftime("%Y-%m-%d ") + value
    try:
        stamp = datetime.fromisoformat(value.removesuffix(" UTC").replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--to-time expects a time like '2026-12-06 21:30:05' (UTC) or epoch seconds, "
                         f"got {text!r}") from exc
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).timestamp()


def check_point(backup: Backup, to_time: float | None, before_gtid: str | None, kind: Flavor) -> None:
    """Refuse a point the backup cannot reach, before anything is changed."""
    if to_time is not None and before_gtid is not None:
        raise UsageError("give --to-time or --before-gtid, not both")
    if to_time is not None and to_time < backup.taken_at:
        raise UsageError(f"--to-time {backups.iso_utc(to_time)} is before backup {backup.id} was taken "
                         f"({backup.time}); pick an older backup ('labctl db backups {backup.lab}')")
    if before_gtid is not None and backup.gtid_set and kind.contains(backup.gtid_set, before_gtid):
        raise UsageError(f"--before-gtid {before_gtid} is already in backup {backup.id} (taken at GTIDs "
                         f"{backup.gtid_set}); pick an older backup ('labctl db backups {backup.lab}')")


@dataclass
class Coverage:
    """The binary logs a restore replays, on which node, read from where."""

    node: db.Node
    container: str
    folder: str
    files: list[str]


def coverage(lab: Lab, backup: Backup) -> Coverage:
    """The primary's binary logs from the backup's file on, after closing the current one (the
    restore's own events go to a new file, which the replay must not read back); an error when
    the primary is not the server the backup's position means something on."""
    primary = backups.require_primary(lab)
    kind = db.lab_flavor(lab)
    if primary.node.name != backup.node:
        raise BackupError(f"backup {backup.id} was taken on {backup.node}, but the primary now is "
                          f"{primary.node.name}: its binary log positions are {backup.node}'s own; make "
                          f"{backup.node} the primary first ('labctl db failover {lab.name} --to {backup.node}')")
    if backup.gtid_set and not kind.contains(primary.gtid_executed, backup.gtid_set):
        raise BackupError(f"{primary.node.name} has not executed backup {backup.id}'s transactions: the lab "
                          f"was brought up afresh since, and its binary logs do not cover the backup")
    connection = db.connect(lab, primary.node, 5)
    try:
        folder = str(db.run_sql(connection, "SELECT @@log_bin_basename AS base")[0]["base"]).rpartition("/")[0]
        db.run_sql(connection, "FLUSH BINARY LOGS")
        logs = [str(row["Log_name"]) for row in db.run_sql(connection, "SHOW BINARY LOGS")][:-1]
    finally:
        connection.close()
    files = [name for name in logs if binlog_index(name) >= binlog_index(backup.binlog_file)]
    if not files or files[0] != backup.binlog_file:
        raise BackupError(f"no binary log coverage: backup {backup.id} starts at {backup.binlog_file}:"
                          f"{backup.binlog_position}, and {primary.node.name} has only "
                          f"{', '.join(logs) or 'none'} (purged, or reset since)")
    return Coverage(primary.node, container_of(lab, primary.node), folder, files)


def scan(lab: Lab, backup: Backup, where: Coverage) -> list[Transaction]:
    """Every transaction in the covered logs after the backup's position."""
    kind = db.lab_flavor(lab)
    found: list[Transaction] = []
    for index, name in enumerate(where.files):
        start = f"--start-position={backup.binlog_position} " if index == 0 else ""
        script = (f"cd {shlex.quote(where.folder)} && "
                  f"TZ=UTC {kind.binlog_tool} --base64-output=DECODE-ROWS {start}{name}")
        result = local_runtime().exec(where.container, ["bash", "-c", script])
        if result.exit_code != 0:
            raise BackupError(f"{where.node.name}: reading {name} failed: {result.output.strip()[-300:]}")
        found.extend(transactions(result.output, name))
    return found


def stop_point(found: list[Transaction], backup: Backup, to_time: float | None,
               before_gtid: str | None) -> StopPoint:
    """The replay's end: the start of the GTID's transaction, a time, or the end of the logs."""
    if before_gtid is None:
        return StopPoint(to_time=to_time)
    target = with_gtid(found, before_gtid)
    if target is None:
        raise BackupError(f"GTID {before_gtid} is not in the binary logs after backup {backup.id} "
                          f"({backup.binlog_file}:{backup.binlog_position} on)")
    return StopPoint(before_gtid=before_gtid, file=target.file, position=target.position)


def replayed(found: list[Transaction], point: StopPoint) -> list[Transaction]:
    """The transactions the replay runs again."""
    if point.position is not None:
        index = next(i for i, t in enumerate(found) if t.file == point.file and t.position == point.position)
        return found[:index]
    if point.to_time is not None:
        return [t for t in found if t.at < point.to_time]
    return found


@dataclass
class RestoreResult:
    """What a restore did and how long each part took."""

    backup: str
    node: str
    point: StopPoint
    files: list[str]
    transactions_replayed: int
    scan_s: float
    load_s: float
    replay_s: float
    catch_up_s: float
    rows: dict[str, int]
    rows_from_dump: dict[str, int]
    replicas: dict[str, dict[str, int]]

    @property
    def seconds(self) -> float:
        return round(self.scan_s + self.load_s + self.replay_s, 3)

    def to_json(self) -> dict[str, Any]:
        return {"backup": self.backup, "node": self.node, "point": self.point.to_json(), "files": self.files,
                "transactions_replayed": self.transactions_replayed, "seconds": self.seconds,
                "scan_s": self.scan_s, "load_s": self.load_s, "replay_s": self.replay_s,
                "replicas_caught_up_s": self.catch_up_s,
                "rows": self.rows, "rows_from_dump": self.rows_from_dump, "rows_restored": sum(self.rows.values()),
                "replicas": self.replicas}


def restore(lab: Lab, backup_id: str, to_time: float | None = None, before_gtid: str | None = None,
            progress: Progress = lambda _: None) -> RestoreResult:
    """Load the backup, replay the logs up to the point, wait for every replica to apply it."""
    kind = db.lab_flavor(lab)
    backup = restorable(lab, backup_id, to_time, before_gtid)
    started = time.monotonic()
    where = coverage(lab, backup)
    progress(f"reading {', '.join(where.files)} from {backup.binlog_file}:{backup.binlog_position}")
    found = scan(lab, backup, where)
    point = stop_point(found, backup, to_time, before_gtid)
    files = where.files if point.file is None else where.files[: where.files.index(point.file) + 1]
    scan_s, started = time.monotonic() - started, time.monotonic()
    progress(f"loading backup {backup.id} into {where.node.name}")
    load_dump(where.container, backup.folder() / backups.DUMP_FILE, kind)
    load_s, started = time.monotonic() - started, time.monotonic()
    from_dump = count_rows(lab, where.node, list(backup.tables))
    progress(f"replaying {len(replayed(found, point))} transactions from {', '.join(files)}")
    replay(where, backup, files, point, kind)
    replay_s, started = time.monotonic() - started, time.monotonic()
    replicas = replicas_caught_up(lab, where.node, list(backup.tables))
    return RestoreResult(backup.id, where.node.name, point, files, len(replayed(found, point)), round(scan_s, 3),
                         round(load_s, 3), round(replay_s, 3), round(time.monotonic() - started, 3),
                         count_rows(lab, where.node, list(backup.tables)), from_dump, replicas)


def restorable(lab: Lab, backup_id: str, to_time: float | None, before_gtid: str | None) -> Backup:
    """The backup, once it is known to be of the lab's flavor and the point one it can reach."""
    kind = db.lab_flavor(lab)
    backup = backups.find_backup(lab.name, backup_id)
    if backup.flavor != kind.name:
        raise BackupError(f"backup {backup.id} is a {backup.flavor} dump; lab '{lab.name}' runs {kind.name}")
    check_point(backup, to_time, before_gtid, kind)
    return backup


def load_dump(container: str, dump: Path, kind: Flavor) -> None:
    """Feed the dump to the server's client in the container, logged (see _UNLOGGED)."""
    argv = local_runtime().exec_command(container, ["bash", "-c", f"{ROOT_LOGIN} {kind.client} -uroot"], stdin=True)
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        assert process.stdin is not None and process.stdout is not None
        for line in _logged_lines(dump):
            process.stdin.write(line)
        process.stdin.close()
        output = process.stdout.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise BackupError(f"loading {dump} failed (exit {process.returncode}): {output.strip()[-400:]}")


def _logged_lines(dump: Path) -> Iterator[bytes]:
    with open(dump, "rb") as handle:
        for line in handle:
            if line.strip().decode("utf-8", "replace") not in _UNLOGGED:
                yield line


def replay(where: Coverage, backup: Backup, files: list[str], point: StopPoint, kind: Flavor) -> None:
    """Pipe the binary logs, from the backup's position to the stop point, into the server."""
    options = " ".join([*kind.replay_options, f"--start-position={backup.binlog_position}",
                        *(shlex.quote(o) for o in point.options())])
    script = (f"set -o pipefail; cd {shlex.quote(where.folder)} && TZ=UTC {kind.binlog_tool} {options} "
              f"{' '.join(files)} | {kind.replay_filter} | {ROOT_LOGIN} {kind.client} -uroot")
    result = local_runtime().exec(where.container, ["bash", "-c", script])
    if result.exit_code != 0:
        raise BackupError(f"{where.node.name}: replaying {', '.join(files)} failed: {result.output.strip()[-400:]}")


def count_rows(lab: Lab, node: db.Node, tables: list[str]) -> dict[str, int]:
    """Rows per table on one node (a table that is not there counts -1)."""
    connection = db.connect(lab, node, 5)
    try:
        counts = {}
        for table in tables:
            schema, _, name = table.partition(".")
            try:
                counts[table] = int(db.run_sql(connection, f"SELECT COUNT(*) AS n FROM `{schema}`.`{name}`")[0]["n"])
            except mysql.connector.Error:
                counts[table] = -1
        return counts
    finally:
        connection.close()


def replicas_caught_up(lab: Lab, primary: db.Node, tables: list[str]) -> dict[str, dict[str, int]]:
    """Wait until every replica has applied what the primary has now; their row counts."""
    state = db.read_state(lab, primary).gtid_executed
    found: dict[str, dict[str, int]] = {}
    for node in db.nodes(lab):
        if node.name == primary.name:
            continue
        db.wait_applied(lab, node, state, REPLICA_CATCH_UP_S)
        found[node.name] = count_rows(lab, node, tables)
    return found
