"""Reading what mysqldump and mysqlbinlog print (MySQL's and MariaDB's): the coordinates a dump
was taken at, and the transactions of a binary log with their GTID, position and time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

# mysqldump --source-data=2 / mariadb-dump --master-data=2 write the position as a comment.
_POSITION = re.compile(r"^-- CHANGE (?:REPLICATION SOURCE|MASTER) TO (?:SOURCE|MASTER)_LOG_FILE='([^']+)', "
                       r"(?:SOURCE|MASTER)_LOG_POS=(\d+)", re.MULTILINE)
# mysqldump --set-gtid-purged=COMMENTED; mariadb-dump --gtid.
_MYSQL_GTIDS = re.compile(r"^/\* SET @@GLOBAL\.GTID_PURGED='\+?([^']*)';\s*\*/", re.MULTILINE)
_MARIADB_GTIDS = re.compile(r"^-- SET GLOBAL gtid_slave_pos='([^']*)';", re.MULTILINE)

_AT = re.compile(r"^# at (\d+)$")
_HEADER = re.compile(r"^#(\d{6})\s+(\d{1,2}:\d{2}:\d{2}) server id \d+\s+end_log_pos (\d+)")
_MYSQL_GTID_NEXT = re.compile(r"^SET @@SESSION\.GTID_NEXT= '([^']+)'")
_MARIADB_GTID = re.compile(r"\tGTID (\d+-\d+-\d+)")


class DumpHeaderError(ValueError):
    """A dump's header lacks the binary log position a point-in-time restore starts from."""


@dataclass(frozen=True)
class DumpCoordinates:
    """Where in the primary's binary log a dump's snapshot was taken, and its GTID set."""

    binlog_file: str
    binlog_position: int
    gtid_set: str


def dump_coordinates(header: str) -> DumpCoordinates:
    """The binary log file, position and GTID set a dump's header comments record."""
    position = _POSITION.search(header)
    if position is None:
        raise DumpHeaderError("the dump has no binary log position (was it taken with --source-data=2?)")
    gtids = _MYSQL_GTIDS.search(header) or _MARIADB_GTIDS.search(header)
    gtid_set = gtids.group(1).replace("\n", "").strip() if gtids else ""
    return DumpCoordinates(position.group(1), int(position.group(2)), gtid_set)


@dataclass
class Transaction:
    """One transaction of a binary log: its GTID, where its GTID event starts, when it was
    written (UTC epoch seconds) and the statements mysqlbinlog shows for it."""

    gtid: str
    file: str
    position: int
    at: float
    statements: list[str] = field(default_factory=list)

    def drops(self, table: str) -> bool:
        """Whether this transaction drops `table` ('db.table')."""
        schema, _, name = table.partition(".")
        pattern = rf"^DROP TABLE\b.*`?{re.escape(schema)}`?\.`?{re.escape(name)}`?(\W|$)"
        return any(re.search(pattern, s, re.IGNORECASE) for s in self.statements)


def transactions(text: str, file: str) -> list[Transaction]:
    """The transactions in `mysqlbinlog --base64-output=DECODE-ROWS FILE` output (either flavor),
    in log order; events before the first GTID (the format description) belong to none."""
    found: list[Transaction] = []
    position = 0
    for line in text.splitlines():
        if at := _AT.match(line):
            position = int(at.group(1))
            continue
        header = _HEADER.match(line)
        if header and (mariadb := _MARIADB_GTID.search(line)):
            found.append(Transaction(mariadb.group(1), file, position, _header_time(header)))
        elif header and "\tGTID\t" in line:
            found.append(Transaction("", file, position, _header_time(header)))
        elif (gtid_next := _MYSQL_GTID_NEXT.match(line)) and found and not found[-1].gtid:
            found[-1].gtid = gtid_next.group(1)
        elif found and line and not line.startswith(("#", "/*", "SET ", "DELIMITER")):
            found[-1].statements.append(line)
    return found


def _header_time(header: re.Match[str]) -> float:
    # mysqlbinlog prints event times in its own time zone; labctl runs it with TZ=UTC.
    stamp = datetime.strptime(f"{header.group(1)} {header.group(2)}", "%y%m%d %H:%M:%S")
    return stamp.replace(tzinfo=timezone.utc).timestamp()


def first_drop(found: list[Transaction], table: str) -> Transaction | None:
    """The first transaction that drops `table`, if any."""
    return next((t for t in found if t.drops(table)), None)


def with_gtid(found: list[Transaction], gtid: str) -> Transaction | None:
    """The transaction with this GTID, if the logs hold it."""
    return next((t for t in found if t.gtid == gtid), None)


def binlog_index(name: str) -> int:
    """The sequence number of a binary log file ('binlog.000012' -> 12)."""
    suffix = name.rpartition(".")[2]
    if not suffix.isdigit():
        raise ValueError(f"not a binary log file name: {name!r}")
    return int(suffix)
