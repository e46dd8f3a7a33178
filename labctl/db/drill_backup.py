"""The backup part of a db drill: a `backup: now` step takes one, the `drop-table` fault drops the
ledger's table, and a `restore: before-drop` step restores to just before that DROP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from labctl.db import backup as backups
from labctl.db import restore as restores
from labctl.db.binlog import first_drop
from labctl.errors import LabctlError
from labctl.experiments import ledger
from labctl.model.lab import Lab

Progress = Callable[[str], None]
# The table the load's writes go to (labctl.db.setup creates it; the ledger reads it back).
LEDGER_TABLE = "labctl.writes"
DROP_FAULT = "drop-table"


class BackupSteps:
    """Takes the drill's backup and restores it; what each took goes in drill.json's `restore`."""

    def __init__(self, lab: Lab, progress: Progress) -> None:
        self.lab = lab
        self.progress = progress
        self.backup: backups.Backup | None = None
        self.report: dict[str, Any] = {}

    def backup_step(self, step: dict[str, Any]) -> None:
        """`backup: now`: a consistent dump of the primary, its position recorded."""
        self.backup = backups.take_backup(self.lab)
        self.report.update(backup=self.backup.id, backup_s=self.backup.seconds,
                           backup_rows=self.backup.tables.get(LEDGER_TABLE))
        self.progress(f"backup {self.backup.id} taken in {self.backup.seconds:.2f} s")

    def restore_step(self, step: dict[str, Any]) -> None:
        """`restore: before-drop`: find the DROP of the ledger's table in the binary log after the
        backup, and restore to the transaction before it. A failure is reported, not raised: the
        drill still heals and reads every write back."""
        started = time.time()
        try:
            self.report.update(self._restore_before_drop())
        except LabctlError as exc:
            self.report["error"] = str(exc)
            self.progress(f"restore failed: {exc}")
        self.report["started_at"] = started

    def _restore_before_drop(self) -> dict[str, Any]:
        if self.backup is None:
            raise LabctlError("a 'restore' step needs a 'backup: now' step before it")
        where = restores.coverage(self.lab, self.backup)
        drop = first_drop(restores.scan(self.lab, self.backup, where), LEDGER_TABLE)
        if drop is None:
            raise LabctlError(f"no DROP TABLE {LEDGER_TABLE} in the binary logs after backup {self.backup.id}")
        self.progress(f"restoring {self.backup.id} to just before {drop.gtid} (DROP TABLE {LEDGER_TABLE})")
        done = restores.restore(self.lab, self.backup.id, before_gtid=drop.gtid, progress=self.progress)
        return {"drop_gtid": drop.gtid, "drop_at": drop.at, **done.to_json()}


def first_failed_at(writes: list[ledger.Write], since: float) -> float:
    """When the first write sent after `since` that failed was answered (`since` when none
    failed): from then on the table is known to be gone (a write sent with it may still commit)."""
    failed = [w.done for w in writes if w.outcome != ledger.ACK and w.sent >= since]
    return min(failed, default=since)


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's row for the restore."""
    restore = report.get("restore")
    if not restore:
        return []
    if restore.get("error"):
        return [("restore", f"failed: {restore['error']}", "")]
    rows = restore.get("rows", {}).get(LEDGER_TABLE)
    return [("restore", f"{restore['seconds']} s (reading the logs {restore.get('scan_s')} s, load "
             f"{restore['load_s']} s, replay of "
             f"{restore['transactions_replayed']} transactions {restore['replay_s']} s), {rows} rows in "
             f"{LEDGER_TABLE}", f"backup {restore.get('backup')} up to before {restore.get('drop_gtid')}")]
