"""Switching a running lab between async and semi-sync: what each node runs, per flavor."""

from __future__ import annotations

from labctl.db.flavors import Flavor, MariaDB
from labctl.db.mode import switch_statements

PLUGINS = [("rpl_semi_sync_source", "semisync_source.so"), ("rpl_semi_sync_replica", "semisync_replica.so")]


def test_a_mysql_replica_gets_the_plugins_it_lacks_then_reconnects_as_semisync() -> None:
    statements = switch_statements(Flavor(), True, 1000, primary=False, missing_plugins=PLUGINS)
    assert statements[0] == "SET GLOBAL super_read_only = OFF"  # INSTALL PLUGIN writes mysql.plugin
    assert "INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'" in statements
    assert statements[-3:] == ["SET GLOBAL rpl_semi_sync_replica_enabled = ON", "STOP REPLICA IO_THREAD",
                               "START REPLICA IO_THREAD"]
    assert "SET GLOBAL super_read_only = ON" in statements


def test_the_primary_sets_its_timeout_and_wait_point_before_it_waits() -> None:
    statements = switch_statements(MariaDB(), True, 1500, primary=True, missing_plugins=[])
    assert statements == ["SET GLOBAL rpl_semi_sync_master_timeout = 1500",
                          "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
                          "SET GLOBAL rpl_semi_sync_master_enabled = ON"]


def test_back_to_async_installs_nothing_and_turns_the_switches_off() -> None:
    assert switch_statements(Flavor(), False, 1000, primary=True, missing_plugins=PLUGINS) == [
        "SET GLOBAL rpl_semi_sync_source_enabled = OFF"]
    assert switch_statements(Flavor(), False, 1000, primary=False, missing_plugins=PLUGINS)[0] == (
        "SET GLOBAL rpl_semi_sync_replica_enabled = OFF")
