"""`labctl db backup`: a consistent logical dump of the primary, with the binary log position and
GTID set it was taken at, kept under the lab's rendered folder as backups/<id>/."""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labctl import paths
from labctl.db import nodes as db
from labctl.db.binlog import DumpHeaderError, dump_coordinates
from labctl.errors import DockerUnavailableError, LabctlError
from labctl.model.lab import Lab
from labctl.runtime import local_runtime

DUMP_FILE = "dump.sql"
META_FILE = "backup.json"
SYSTEM_SCHEMAS = ("mysql", "sys", "information_schema", "performance_schema")
# The position comes in the header, before the first table; MariaDB's GTID position after the
# last one. 64 KiB at either end holds them.
COMMENT_BYTES = 65536
ROOT_LOGIN = "MYSQL_PWD=$MYSQL_ROOT_PASSWORD"


class BackupError(LabctlError):
    """A backup could not be taken or found: what, which lab, what to do."""


@dataclass
class Backup:
    """One backup's metadata (backup.json beside its dump)."""

    id: str
    lab: str
    taken_at: float
    node: str
    flavor: str
    binlog_file: str
    binlog_position: int
    gtid_set: str
    databases: list[str]
    size_bytes: int
    seconds: float
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def time(self) -> str:
        return iso_utc(self.taken_at)

    def folder(self) -> Path:
        return backups_dir(self.lab) / self.id

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "time": self.time, "dump": str(self.folder() / DUMP_FILE)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Backup:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def backups_dir(lab: str) -> Path:
    return paths.compose_dir(lab) / "backups"


def container_of(lab: Lab, node: db.Node) -> str:
    return f"{lab.project}-{node.name}"


def require_primary(lab: Lab) -> db.NodeState:
    """The lab's writable primary, or an error saying why there is none."""
    found = db.states(lab)
    primary = db.current_primary(found)
    if primary is None:
        down = ", ".join(s.node.name for s in found if not s.reachable) or "none"
        raise BackupError(f"lab '{lab.name}' has no writable primary (nodes down: {down}); "
                          f"is it up? see 'labctl db status {lab.name}'")
    return primary


def take_backup(lab: Lab) -> Backup:
    """Dump the primary's own databases in one transaction (InnoDB's consistent snapshot), with
    the binary log position and GTID set of that snapshot in the dump's header."""
    primary = require_primary(lab).node
    kind = db.lab_flavor(lab)
    schemas = user_databases(lab, primary)
    backup_id = new_backup_id(lab.name)
    folder = backups_dir(lab.name) / backup_id
    folder.mkdir(parents=True)
    started = time.time()
    dump = folder / DUMP_FILE
    # REPLACE rows rather than INSERT them: the load races writers that do not wait for it (the
    # heartbeat event stamps its row every second, between the dump's CREATE and its rows).
    script = (f"{ROOT_LOGIN} {kind.dump_tool} -uroot --single-transaction --replace {' '.join(kind.dump_options)} "
              f"--databases {' '.join(schemas)}")
    _stream_out(local_runtime().exec_command(container_of(lab, primary), ["bash", "-c", script]), dump)
    seconds = time.time() - started
    try:
        where = dump_coordinates(dump_comments(dump))
    except DumpHeaderError as exc:
        raise BackupError(f"backup {backup_id} of lab '{lab.name}': {exc}; see {dump}") from exc
    backup = Backup(backup_id, lab.name, started, primary.name, kind.name, where.binlog_file,
                    where.binlog_position, where.gtid_set, schemas, dump.stat().st_size, round(seconds, 3),
                    dump_rows(dump))
    (folder / META_FILE).write_text(json.dumps(backup.to_json(), indent=2) + "\n", encoding="utf-8")
    return backup


def _stream_out(argv: list[str], target: Path) -> None:
    try:
        with open(target, "wb") as handle:
            result = subprocess.run(argv, stdout=handle, stderr=subprocess.PIPE, check=False)
    except FileNotFoundError as exc:
        raise DockerUnavailableError("'docker' is not installed or not on PATH; see 'labctl doctor'") from exc
    if result.returncode != 0:
        error = result.stderr.decode("utf-8", "replace").strip()[-400:]
        raise BackupError(f"the dump failed (exit {result.returncode}): {error}")


def dump_comments(dump: Path) -> str:
    """The first and last COMMENT_BYTES of a dump, where its position comments are."""
    with open(dump, "rb") as handle:
        head = handle.read(COMMENT_BYTES)
        handle.seek(max(len(head), dump.stat().st_size - COMMENT_BYTES))
        tail = handle.read()
    return (head + b"\n" + tail).decode("utf-8", "replace")


def user_databases(lab: Lab, node: db.Node) -> list[str]:
    """The databases on a node that are not the server's own."""
    connection = db.connect(lab, node, 5)
    try:
        rows = db.run_sql(connection, "SELECT schema_name AS name FROM information_schema.schemata")
    finally:
        connection.close()
    names = sorted(str(row["name"]) for row in rows if str(row["name"]).lower() not in SYSTEM_SCHEMAS)
    if not names:
        raise BackupError(f"lab '{lab.name}': {node.name} has no database of its own to back up")
    return names


def dump_rows(dump: Path) -> dict[str, int]:
    """Rows per table ('db.table') a dump holds: its extended INSERTs (or REPLACEs) counted by
    their tuples, on one line (mysqldump) or one line a row (mariadb-dump)."""
    rows: dict[str, int] = {}
    schema, table, statement = "", "", ""
    with open(dump, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not table and line.startswith("USE `"):
                schema = line[5:].split("`", 1)[0]
            elif not table and line.startswith(("INSERT INTO `", "REPLACE INTO `")):
                table, statement = f"{schema}.{line.split('`', 2)[1]}", ""
            if table:
                statement += line
                if line.rstrip().endswith(";"):
                    rows[table] = rows.get(table, 0) + count_tuples(statement)
                    table = ""
    return rows


def count_tuples(insert: str) -> int:
    """How many row tuples one `INSERT ... VALUES (...),(...);` statement holds, quotes respected."""
    depth, quoted, escaped, count = 0, False, False, 0
    for char in re.split(r"\sVALUES\s", insert, maxsplit=1)[-1]:
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char == "(":
            depth += 1
            count += depth == 1
        elif char == ")":
            depth -= 1
    return count


def new_backup_id(lab: str) -> str:
    """b-YYYYmmdd-HHMMSS (UTC), with a suffix when that second already has one."""
    base = "b-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    taken = {p.name for p in backups_dir(lab).glob(f"{base}*")}
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, 1000) if f"{base}-{n}" not in taken)


def list_backups(lab: str) -> list[Backup]:
    """The lab's backups, oldest first (folders without readable metadata are skipped)."""
    found = []
    for meta in sorted(backups_dir(lab).glob(f"*/{META_FILE}")):
        try:
            found.append(Backup.from_json(json.loads(meta.read_text(encoding="utf-8"))))
        except (ValueError, TypeError):
            continue
    return sorted(found, key=lambda b: b.taken_at)


def find_backup(lab: str, backup_id: str) -> Backup:
    """A backup by id; an unknown id is an error naming the ones there are."""
    for backup in list_backups(lab):
        if backup.id == backup_id:
            if not (backup.folder() / DUMP_FILE).is_file():
                raise BackupError(f"backup {backup_id} of lab '{lab}' has lost its dump "
                                  f"({backup.folder() / DUMP_FILE})")
            return backup
    known = ", ".join(b.id for b in list_backups(lab)) or "none; take one with 'labctl db backup " + lab + "'"
    raise BackupError(f"lab '{lab}' has no backup '{backup_id}' (backups: {known})")
