"""`labctl db ...`: the database commands, as thin as the rest of the CLI."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from labctl.cli.options import LazyChoice, as_option

if TYPE_CHECKING:
    from rich.table import Table


@click.group("db")
def db_group() -> None:
    """Inspect and operate a lab's MySQL/MariaDB primary and replicas."""


@db_group.command("status")
@as_option
@click.argument("lab")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_cmd(lab: str, as_json: bool) -> None:
    """Every node's role, read-only flag, GTIDs, replication threads, lag and semi-sync state."""
    from labctl import console
    from labctl.db import status as db_status

    running = console.attached(lab).lab
    own = [r for b in running.blocks.values() if (r := b.spec.db_status(running, b)) is not None]
    if own:
        _show_kind_status(own, as_json)
        return
    report = db_status.status(running)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    console.out.print(_status_table(report))
    if report["fell_back_to_async"]:
        console.out.print("[bold red]semi-sync fell back to async[/]: acknowledged writes may be lost")


def _show_kind_status(reports: list[dict[str, Any]], as_json: bool) -> None:
    from labctl import console

    if as_json:
        click.echo(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
        return
    for report in reports:
        console.out.print(_kind_table(report))


def _status_table(report: dict[str, Any]) -> Table:
    from rich import box
    from rich.table import Table

    # Fits 80 columns: every column but the error is kept whole, the error wraps.
    table = Table(title=f"{report['lab']}: {report['flavor']}, {report['replication']} replication",
                  box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for column in ("node", "role", "read-only", "txns", "source", "io/sql", "lag s"):
        table.add_column(column, no_wrap=True, justify="right" if column in ("txns", "lag s") else "left")
    table.add_column("error", ratio=1, overflow="fold")
    for row in report["nodes"]:
        threads = f"{row['io_thread']}/{row['sql_thread']}" if "io_thread" in row else ""
        lag = "" if row.get("lag_s") is None else f"{row['lag_s']:.1f}"
        error = _short(row.get("error") or row.get("last_error") or "")
        read_only = {True: "yes", False: "no"}.get(row.get("read_only"), "")
        table.add_row(row["node"], row["role"], read_only, str(row.get("transactions", "")),
                      str(row.get("source") or ""), threads, lag, error)
    return table


def _kind_table(report: dict[str, Any]) -> Table:
    """The table of a database kind with a status of its own: its columns, one row per node."""
    from rich import box
    from rich.table import Table

    table = Table(title=report["title"], box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    headings = report.get("headings", {})
    for column in report["columns"]:
        table.add_column(headings.get(column, column), no_wrap=column != "error", overflow="fold")
    for row in report["nodes"]:
        table.add_row(*(_short(_cell(row.get(c))) if c == "error" else _cell(row.get(c)) for c in report["columns"]))
    return table


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _short(error: str) -> str:
    if "Can't connect" in error or "Lost connection" in error:
        return "not answering"
    return error if len(error) <= 60 else error[:57] + "..."


@db_group.command("failover")
@as_option
@click.argument("lab")
@click.option("--to", "target", default=None, metavar="NODE", help="Promote this node (e.g. db-3) instead of "
              "the most advanced replica.")
@click.option("--json", "as_json", is_flag=True, help="Print the steps as JSON.")
def failover_cmd(lab: str, target: str | None, as_json: bool) -> None:
    """Promote a replica: fence the old primary, pick the most advanced replica (GTIDs), promote it,
    repoint the others, and wait until HAProxy sends writes to it."""
    from labctl import console
    from labctl.db import failover as db_failover

    printer = (lambda _: None) if as_json else (lambda text: console.out.print(f"  {text}"))
    result = db_failover.failover(console.attached(lab).lab, target, printer)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    summary = result.to_json()
    console.out.print(f"{lab}: {summary['old_primary'] or 'no reachable primary'} -> {summary['new_primary']} "
                      f"in {summary['seconds']:.2f} s")


def _users() -> tuple[str, ...]:
    from labctl.db.secrets import USERS

    return USERS


@db_group.command("password")
@as_option
@click.argument("lab")
@click.argument("user", type=LazyChoice(_users), default="app")
def password_cmd(lab: str, user: str) -> None:
    """Print one of the lab's generated database passwords (app, repl or root); labctl never
    prints them unless asked. They live owner-only in compose/LAB/secrets/."""
    from labctl.db.secrets import load_secrets

    click.echo(load_secrets(lab)[user])


@db_group.command("rejoin")
@as_option
@click.argument("lab")
@click.argument("node", required=False)
def rejoin_cmd(lab: str, node: str | None) -> None:
    """Make NODE (or every node not following the primary, e.g. an old primary after a failover)
    a replica of the current primary; a node with transactions the primary lacks is rebuilt."""
    from labctl import console
    from labctl.db import rejoin as db_rejoin

    with console.progress(f"rejoin {lab}") as progress:
        done = db_rejoin.rejoin(console.attached(lab).lab, node, progress)  # type: ignore[arg-type]
    console.out.print(f"{lab}: {len(done)} node(s) rejoined" + "".join(f"\n  {line}" for line in done))


@db_group.command("check")
@as_option
@click.argument("lab")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check_cmd(lab: str, as_json: bool) -> None:
    """Compare every node with the primary: row counts, checksums and errant GTIDs. Exit 1 if they differ."""
    from labctl import console
    from labctl.db import check as db_check

    running = console.attached(lab).lab
    own = [r for b in running.blocks.values() if (r := b.spec.db_check(running, b)) is not None]
    report = own[0] if own else db_check.check(running)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        console.out.print(_check_table(report))
    if not report["consistent"]:
        sys.exit(1)


def _check_table(report: dict[str, Any]) -> Table:
    from rich.table import Table

    verdict = "consistent" if report["consistent"] else "[bold red]INCONSISTENT[/]"
    reference = report["compared_with"]
    table = Table(title=f"{report['lab']}: {verdict} (compared with {reference})")
    for column in ("node", "table", "rows", "checksum", f"same as {reference}", "GTIDs only it has"):
        table.add_column(column)
    for row in report["nodes"]:
        same = row.get("same_as_primary", row.get("same_as_reference"))
        gtids = row.get("errant_gtids", row.get("extra_gtids"))
        for name, values in row["tables"].items():
            same_table = name not in row["differs"] if "differs" in row else same
            table.add_row(row["node"], name, str(values.get("rows", values.get("error", ""))),
                          str(values.get("checksum", "")), "yes" if same_table else "NO", gtids or "-")
    return table


@db_group.command("backup")
@click.argument("lab")
@click.option("--list", "listing", is_flag=True, help="List the lab's backups instead of taking one.")
@click.option("--json", "as_json", is_flag=True, help="Print the backup's metadata as JSON.")
def backup_cmd(lab: str, listing: bool, as_json: bool) -> None:
    """Take a consistent logical dump of the primary (mysqldump / mariadb-dump --single-transaction)
    with its binary log position and GTID set, kept in compose/LAB/backups/ID/."""
    from labctl import console
    from labctl.db import backup as db_backup

    if listing:
        _print_backups(lab, as_json)
        return
    running = console.attached(lab)
    running.require_up()
    with console.progress(f"backup {lab}"):
        taken = db_backup.take_backup(running.lab)
    if as_json:
        click.echo(json.dumps(taken.to_json(), indent=2))
        return
    console.out.print(f"{lab}: backup {taken.id} of {taken.node} ({', '.join(taken.databases)}): "
                      f"{taken.size_bytes} bytes in {taken.seconds:.2f} s, at {taken.binlog_file}:"
                      f"{taken.binlog_position}, GTIDs {taken.gtid_set or '-'}")


@db_group.command("backups")
@click.argument("lab")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def backups_cmd(lab: str, as_json: bool) -> None:
    """List the lab's backups, oldest first (the same as 'labctl db backup LAB --list')."""
    _print_backups(lab, as_json)


def _print_backups(lab: str, as_json: bool) -> None:
    from rich import box
    from rich.table import Table

    from labctl import console
    from labctl.db import backup as db_backup

    found = db_backup.list_backups(lab)
    if as_json:
        click.echo(json.dumps([b.to_json() for b in found], indent=2))
        return
    # Fits 80 columns: the id is the UTC time it was taken; the GTID set is in --json.
    table = Table(title=f"{lab}: {len(found)} backup(s)", box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for column in ("id", "node", "binlog position", "rows", "bytes", "seconds"):
        table.add_column(column, no_wrap=True)
    for b in found:
        table.add_row(b.id, b.node, f"{b.binlog_file}:{b.binlog_position}",
                      str(sum(b.tables.values())), str(b.size_bytes), f"{b.seconds:.2f}")
    console.out.print(table)


@db_group.command("restore")
@click.argument("lab")
@click.option("--backup", "backup_id", required=True, metavar="ID",
              help="The backup to restore ('labctl db backups LAB').")
@click.option("--to-time", default=None, metavar="T", help="Replay the binary logs up to this time "
              "('2026-12-06 21:30:05', UTC) instead of to their end.")
@click.option("--before-gtid", default=None, metavar="GTID", help="Replay the binary logs up to, not including, "
              "this transaction (the GTID of an accidental DROP).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def restore_cmd(lab: str, backup_id: str, to_time: str | None, before_gtid: str | None, as_json: bool) -> None:
    """Load a backup into the primary and replay its binary logs from the backup's position up to a
    point (--to-time or --before-gtid; default: all of them); the replicas get it all through
    replication."""
    from labctl import console
    from labctl.db import restore as db_restore
    from labctl.errors import UsageError

    if to_time is not None and before_gtid is not None:
        raise UsageError("give --to-time or --before-gtid, not both")
    until = None if to_time is None else db_restore.parse_time(to_time)
    running = console.attached(lab)
    running.require_up()
    with console.progress(f"restore {lab}") as progress:
        done = db_restore.restore(running.lab, backup_id, until, before_gtid, progress)  # type: ignore[arg-type]
    report = done.to_json()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = ", ".join(f"{table} {count}" for table, count in report["rows"].items())
    console.out.print(f"{lab}: backup {done.backup} restored on {done.node} in {done.seconds:.2f} s (reading "
                      f"the binary logs {done.scan_s:.2f} s, load {done.load_s:.2f} s, replay of "
                      f"{done.transactions_replayed} transactions {done.replay_s:.2f} s); rows now: {rows}; "
                      f"replicas caught up in {done.catch_up_s:.2f} s")


COMMANDS: list[click.Command] = [db_group]
