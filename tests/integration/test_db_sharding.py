"""db-sharding on a real Docker engine: three MariaDB shards behind the app's shard map, then
behind a MariaDB Spider node (`shards.front=spider`).
One lab up for the module; the strategy is switched on the running lab with `up --set`
(the app re-reads the rewritten map). A range on a time-ordered id puts the new writes on
the last shard, a hash spreads them, skewed customers make one shard hot, a fan-out read
asks every shard, and killing one shard fails only its own keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Cli, lab_objects

LAB = "db-sharding"
SHARDS = ("shards-1", "shards-2", "shards-3")


@pytest.fixture(scope="module")
def sharding_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("sharding") / "home")

    def cleanup() -> None:
        runner.run("down", LAB)
        assert lab_objects(LAB) == []

    request.addfinalizer(cleanup)
    runner.ok("up", LAB)
    return runner


def _load(lab: Cli, strategy: str, seconds: int = 6, front: str = "app") -> dict[str, Any]:
    lab.ok("up", LAB, "--set", f"shards.strategy={strategy}", "--set", f"shards.front={front}")
    summary = json.loads(lab.ok("load", LAB, "--users", "4", "--duration", f"{seconds}s", "--json"))
    return dict(summary["shards"])


def _shares(report: dict[str, Any]) -> list[float]:
    return [report["writes_by_shard"][name]["share"] for name in SHARDS]


def test_range_on_a_growing_id_puts_the_new_writes_on_the_last_shard(sharding_lab: Cli) -> None:
    report = _load(sharding_lab, "range", 4)
    assert sum(report["writes_by_shard"][n]["ok"] for n in SHARDS) > 200
    assert _shares(report)[2] >= 0.9, report["writes_by_shard"]
    status = json.loads(sharding_lab.ok("db", "status", LAB, "--json"))
    assert [n["state"] for n in status["nodes"]] == ["up"] * 3 and status["shard_map"]["routing"] == "range"


def test_hash_spreads_the_writes_and_skewed_customers_make_one_shard_hot(sharding_lab: Cli) -> None:
    hashed = _load(sharding_lab, "hash", 8)
    assert sum(hashed["writes_by_shard"][n]["ok"] for n in SHARDS) > 600
    # Even is 1/3 each; the band allows the sampling noise of a few thousand writes.
    assert all(abs(share - 1 / 3) < 0.05 for share in _shares(hashed)), hashed["writes_by_shard"]
    skewed = _load(sharding_lab, "skewed", 6)
    assert max(_shares(skewed)) > 0.42 and min(_shares(skewed)) < 0.25, skewed["writes_by_shard"]
    # A read without the key asks all three shards: never faster at the median than one shard.
    ops = hashed["by_operation"]
    assert ops["fan-out"]["errors"] == 0 and ops["keyed"]["errors"] == 0
    assert ops["fan-out"]["p50_ms"] > ops["keyed"]["p50_ms"], ops


def test_kill_shard_fails_only_the_dead_shards_keys(sharding_lab: Cli) -> None:
    sharding_lab.ok("up", LAB, "--set", "shards.strategy=hash")
    result = sharding_lab.run("drill", LAB, "kill-shard", "--json")
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    by_shard = report["shards"]["writes_by_shard"]
    assert by_shard["shards-2"]["errors"] > 0
    assert by_shard["shards-1"]["errors"] == 0 and by_shard["shards-3"]["errors"] == 0
    assert by_shard["shards-1"]["ok"] > 100 and by_shard["shards-3"]["ok"] > 100
    assert report["shards"]["by_operation"]["fan-out"]["errors"] > 0


def _rows(lab: Cli) -> dict[str, int]:
    status = json.loads(lab.ok("db", "status", LAB, "--json"))
    return {n["shard"]: int(n["rows"]) for n in status["nodes"]}


def _grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in SHARDS}


def test_spider_front_partitions_one_table_over_the_shards(sharding_lab: Cli) -> None:
    sharding_lab.ok("up", LAB, "--set", "shards.front=spider", "--set", "shards.strategy=range")
    before = _rows(sharding_lab)
    ranged = json.loads(sharding_lab.ok("load", LAB, "--users", "4", "--duration", "5s", "--json"))["shards"]
    grown = _grown(before, after := _rows(sharding_lab))
    # The rows Spider put on each shard, counted on the shards themselves: the last range takes them.
    assert sum(grown.values()) > 30 and grown["shards-3"] >= 0.9 * sum(grown.values()), grown
    assert ranged["front"] == "spider" and _shares(ranged)[2] >= 0.9, ranged["writes_by_shard"]
    # Counting through Spider asks every shard and adds them up.
    assert after["shards-spider"] == sum(after[name] for name in SHARDS)
    hashed = _load(sharding_lab, "hash", 8, front="spider")
    hashed_grown = _grown(after, _rows(sharding_lab))
    total = sum(hashed_grown.values())
    # HASH(shard_key) is shard_key MOD 3 over uniform customers: even, up to the noise of a few hundred writes.
    assert total > 100 and all(abs(n / total - 1 / 3) < 0.1 for n in hashed_grown.values()), hashed_grown
    ops = hashed["by_operation"]
    assert ops["fan-out"]["errors"] == 0 and ops["fan-out"]["p50_ms"] > ops["keyed"]["p50_ms"], ops


def test_kill_shard_behind_spider_fails_the_dead_shards_keys(sharding_lab: Cli) -> None:
    sharding_lab.ok("up", LAB, "--set", "shards.front=spider", "--set", "shards.strategy=hash")
    result = sharding_lab.run("drill", LAB, "kill-shard", "--json")
    report = json.loads(result.stdout)
    # Not the verdict: behind Spider a few writes to the live shards may fail at the kill
    # (measured 0 and 3 of some 200: lost connections through the Spider node), so the
    # drill's max_live_shard_errors: 0 does not always hold there.
    assert report["verdict"] in ("pass", "fail"), result.stdout[-3000:]
    shards, errors = report["shards"], report["errors"]
    by_shard = shards["writes_by_shard"]
    live_ok = by_shard["shards-1"]["ok"] + by_shard["shards-3"]["ok"]
    assert shards["faulted_shard_errors"] > 0 and live_ok > 60, by_shard
    assert shards["live_shard_errors"] <= 0.05 * live_ok, by_shard
    # Spider itself names the partition it could not reach.
    assert any("Unable to connect to foreign data source: shard2" in e["error"] for e in errors), errors
    assert shards["by_operation"]["fan-out"]["errors"] > 0
