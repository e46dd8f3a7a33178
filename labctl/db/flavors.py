"""The SQL that differs between MySQL and MariaDB, one class per flavor and nowhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Flavor:
    """Statements and names of one server flavor; MySQL's are the defaults."""

    name: str = "mysql"
    reset_binlogs: str = "RESET BINARY LOGS AND GTIDS"
    gtid_variable: str = "@@global.gtid_executed"
    semisync_status: str = "Rpl_semi_sync_source_status"
    semisync_waits: str = "Rpl_semi_sync_source_no_tx"
    semisync_source_switch: str = "rpl_semi_sync_source_enabled"
    semisync_replica_switch: str = "rpl_semi_sync_replica_enabled"
    semisync_source_timeout: str = "rpl_semi_sync_source_timeout"
    semisync_wait_point: str = "rpl_semi_sync_source_wait_point"
    # (plugin, library) that semi-sync needs loaded; my.cnf loads them when the lab starts semi-sync.
    semisync_plugins: tuple[tuple[str, str], ...] = (("rpl_semi_sync_source", "semisync_source.so"),
                                                     ("rpl_semi_sync_replica", "semisync_replica.so"))
    io_running: str = "Replica_IO_Running"
    sql_running: str = "Replica_SQL_Running"
    source_host: str = "Source_Host"
    seconds_behind: str = "Seconds_Behind_Source"
    last_error: str = "Last_Error"
    received: str = "Retrieved_Gtid_Set"
    state_variable: str = "@@global.gtid_executed"
    wait_applied: str = "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS timed_out"
    client: str = "mysql"
    dump_tool: str = "mysqldump"
    # The position and GTID set go in the header as comments: GTID_PURGED itself could not be
    # loaded into a server that has executed transactions, and the dump is loaded into one.
    dump_options: tuple[str, ...] = ("--source-data=2", "--set-gtid-purged=COMMENTED")
    binlog_tool: str = "mysqlbinlog"
    # The server skips a replayed transaction whose GTID it has executed already (it has: the
    # events were its own), so the replay drops them and each runs as a new transaction.
    replay_options: tuple[str, ...] = ("--skip-gtids",)
    replay_filter: str = "cat"

    def change_source(self, host: str, user: str, password: str) -> tuple[str, tuple[str, ...]]:
        """CHANGE REPLICATION SOURCE with GTID auto-positioning, and its parameters."""
        return (
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=3306, SOURCE_USER=%s, "
            "SOURCE_PASSWORD=%s, SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1, "
            "SOURCE_CONNECT_RETRY=1, SOURCE_RETRY_COUNT=100000, SOURCE_HEARTBEAT_PERIOD=1",
            (host, user, password),
        )

    def writable(self, on: bool) -> list[str]:
        """Make the node take writes (on) or fence it read-only (off)."""
        if on:
            return ["SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"]
        return ["SET GLOBAL super_read_only = ON"]

    def after_reset(self) -> list[str]:
        return []

    def new_server_id(self, server_id: int) -> str:
        """Give a rebuilt node a server id of its own, kept across restarts where the server can."""
        return f"SET PERSIST server_id = {server_id}"

    def admin_writes(self, on: bool) -> list[str]:
        """Let root write on a read-only node (on), or stop it again; clients stay read-only."""
        return [f"SET GLOBAL super_read_only = {'OFF' if on else 'ON'}"]

    def clone_from(self, donor: str, password: str) -> list[str]:
        """Statements that replace this node's data with a copy of the donor's (the clone
        plugin); empty for a server without one, whose node is rebuilt from an empty datadir."""
        # Only super_read_only goes off: read_only stays on, so no writer check passes meanwhile.
        return ["SET GLOBAL super_read_only = OFF", f"SET GLOBAL clone_valid_donor_list = '{donor}:3306'",
                f"CLONE INSTANCE FROM 'root'@'{donor}':3306 IDENTIFIED BY '{password}'"]

    def delay_statements(self, seconds: int) -> list[str]:
        """Make a replica apply each transaction `seconds` after its source committed it."""
        return ["STOP REPLICA SQL_THREAD", f"CHANGE REPLICATION SOURCE TO SOURCE_DELAY = {seconds}",
                "START REPLICA SQL_THREAD"]

    def errant(self, replica_state: str, primary_state: str) -> str:
        """Transactions a replica has that the primary never had, as a GTID set ('' when none)."""
        mine, theirs = _mysql_intervals(replica_state), _mysql_intervals(primary_state)
        extra = []
        for uuid, numbers in sorted(mine.items()):
            missing = sorted(numbers - theirs.get(uuid, set()))
            if missing:
                extra.append(f"{uuid}:{_ranges(missing)}")
        return ",".join(extra)

    def contains(self, state: str, gtid_set: str) -> bool:
        """Whether a server whose GTID state is `state` has executed every transaction of `gtid_set`."""
        mine = _mysql_intervals(state)
        return all(numbers <= mine.get(uuid, set()) for uuid, numbers in _mysql_intervals(gtid_set).items())

    def transactions(self, gtid_set: str) -> int:
        """How many transactions a GTID set holds ('uuid:1-5:7,uuid2:1-3' -> 9)."""
        total = 0
        for member in filter(None, (m.strip() for m in gtid_set.replace("\n", "").split(","))):
            for interval in member.split(":")[1:]:
                low, _, high = interval.partition("-")
                total += int(high or low) - int(low) + 1
        return total


@dataclass(frozen=True)
class MariaDB(Flavor):
    """MariaDB: its own GTIDs (domain-server-sequence) and the older replication names."""

    name: str = "mariadb"
    reset_binlogs: str = "RESET MASTER"
    gtid_variable: str = "@@global.gtid_current_pos"
    semisync_status: str = "Rpl_semi_sync_master_status"
    semisync_waits: str = "Rpl_semi_sync_master_no_tx"
    semisync_source_switch: str = "rpl_semi_sync_master_enabled"
    semisync_replica_switch: str = "rpl_semi_sync_slave_enabled"
    semisync_source_timeout: str = "rpl_semi_sync_master_timeout"
    semisync_wait_point: str = "rpl_semi_sync_master_wait_point"
    semisync_plugins: tuple[tuple[str, str], ...] = ()  # built into the server
    io_running: str = "Slave_IO_Running"
    sql_running: str = "Slave_SQL_Running"
    source_host: str = "Master_Host"
    seconds_behind: str = "Seconds_Behind_Master"
    received: str = "Gtid_IO_Pos"
    state_variable: str = "@@global.gtid_binlog_state"
    wait_applied: str = "SELECT IF(MASTER_GTID_WAIT(%s, %s) = 0, 0, 1) AS timed_out"
    client: str = "mariadb"
    dump_tool: str = "mariadb-dump"
    dump_options: tuple[str, ...] = ("--master-data=2", "--gtid")
    binlog_tool: str = "mariadb-binlog"
    replay_options: tuple[str, ...] = ()
    # mariadb-binlog has no --skip-gtids: it sets each event's domain, server id and sequence
    # number, and gtid_strict_mode refuses a sequence number lower than the last one. Without
    # the last two the server numbers the replayed events as its own new transactions (and a
    # replica whose server id the events carried would skip them as its own).
    replay_filter: str = "sed -e '/SET @@session.gtid_seq_no=/d' -e '/SET @@session.server_id=/d'"

    def change_source(self, host: str, user: str, password: str) -> tuple[str, tuple[str, ...]]:
        return (
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=3306, MASTER_USER=%s, MASTER_PASSWORD=%s, "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
            (host, user, password),
        )

    def writable(self, on: bool) -> list[str]:
        return [f"SET GLOBAL read_only = {'OFF' if on else 'ON'}"]

    def after_reset(self) -> list[str]:
        return ["SET GLOBAL gtid_slave_pos = ''"]

    def new_server_id(self, server_id: int) -> str:
        return f"SET GLOBAL server_id = {server_id}"

    def admin_writes(self, on: bool) -> list[str]:
        return []  # MariaDB's read_only already lets root (READ_ONLY ADMIN) write

    def clone_from(self, donor: str, password: str) -> list[str]:
        return []  # no clone plugin: the node is rebuilt empty and replays the primary's log

    def delay_statements(self, seconds: int) -> list[str]:
        return ["STOP REPLICA SQL_THREAD", f"CHANGE MASTER TO MASTER_DELAY = {seconds}", "START REPLICA SQL_THREAD"]

    def errant(self, replica_state: str, primary_state: str) -> str:
        """In MariaDB's binlog state, a (domain, server) the primary lacks or trails is errant."""
        theirs = {(d, s): int(q) for d, s, q in re.findall(r"(\d+)-(\d+)-(\d+)", primary_state)}
        extra = [f"{d}-{s}-{q}" for d, s, q in re.findall(r"(\d+)-(\d+)-(\d+)", replica_state)
                 if theirs.get((d, s), 0) < int(q)]
        return ",".join(extra)

    def contains(self, state: str, gtid_set: str) -> bool:
        """MariaDB's positions are per domain: the state holds a position when its domain is as far."""
        mine = _mariadb_positions(state)
        return all(mine.get(domain, 0) >= seq for domain, seq in _mariadb_positions(gtid_set).items())

    def transactions(self, gtid_set: str) -> int:
        """MariaDB positions are domain-server-sequence; sequences count per domain."""
        return sum(int(seq) for _, seq in _mariadb_positions(gtid_set).items())


def _mariadb_positions(gtid_set: str) -> dict[str, int]:
    positions: dict[str, int] = {}
    for domain, _server, seq in re.findall(r"(\d+)-(\d+)-(\d+)", gtid_set):
        positions[domain] = max(positions.get(domain, 0), int(seq))
    return positions


def _mysql_intervals(gtid_set: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for member in filter(None, (m.strip() for m in gtid_set.replace("\n", "").split(","))):
        uuid, *intervals = member.split(":")
        numbers = found.setdefault(uuid, set())
        for interval in intervals:
            low, _, high = interval.partition("-")
            numbers.update(range(int(low), int(high or low) + 1))
    return found


def _ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ":".join(parts)


FLAVORS: dict[str, Flavor] = {"mysql": Flavor(), "mariadb": MariaDB()}


def flavor(name: str) -> Flavor:
    """The flavor by name (the lab schema allows only these)."""
    return FLAVORS[name]
