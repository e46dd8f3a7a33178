"""The shards block without Docker: the app's routing (images/app/appshard.py, loaded as it
ships), the rendered shard map for each strategy, the skewed key distribution, and the
per-shard report from recorded requests."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from labctl.kinds.shards import RANGE_FROM_US, RANGE_TO_US, shard_map
from labctl.model.lab import Lab, load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files
from labctl.shards import keys as shard_user
from labctl.shards import report, spider
from tests.unit.test_lab_validation import labs_root, problems_of, write_lab  # noqa: F401

APPSHARD = Path(__file__).resolve().parents[2] / "images" / "app" / "appshard.py"


@pytest.fixture(scope="module")
def appshard() -> ModuleType:
    spec = importlib.util.spec_from_file_location("appshard", APPSHARD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["appshard"] = module
    spec.loader.exec_module(module)
    return module


def _map(appshard: ModuleType, strategy: str) -> object:
    lab = load_lab("db-sharding", parse_overrides([f"shards.strategy={strategy}"]))
    return appshard.ShardMap.from_json(json.loads(json.dumps(shard_map(lab.blocks["shards"]))))


def test_hash_spreads_uniform_customers_within_ten_percent_of_even(appshard: ModuleType) -> None:
    found = _map(appshard, "hash")
    counts = Counter(appshard.shard_index(found, key) for key in range(1, 30001))
    assert sorted(counts) == [0, 1, 2]
    assert all(abs(c / 30000 - 1 / 3) < 0.1 / 3 for c in counts.values()), counts


def test_range_puts_every_new_time_ordered_id_on_the_last_shard(appshard: ModuleType) -> None:
    found = _map(appshard, "range")
    now = time.time_ns() // 1000
    assert {appshard.shard_index(found, now + i) for i in range(1000)} == {2}
    assert appshard.shard_index(found, 1) == 0
    assert appshard.shard_index(found, (RANGE_FROM_US + RANGE_TO_US) // 2) == 1  # mid-2025


def test_a_key_below_every_range_is_refused(appshard: ModuleType) -> None:
    found = appshard.ShardMap.from_json({"routing": "range", "shards": [
        {"name": "a", "address": "a:3306", "from": 10, "to": 20}, {"name": "b", "address": "b:3306", "from": 20}]})
    assert appshard.shard_index(found, 25) == 1
    with pytest.raises(ValueError, match="key 5 is in no shard's range"):
        appshard.shard_index(found, 5)


def test_skewed_customers_make_one_shard_hot_under_the_hash(appshard: ModuleType) -> None:
    found = _map(appshard, "skewed")
    rng = random.Random(7)
    shard_user._zipf_weights[:] = [shard_user.zipf_weights(10000, 1.5)]
    counts = Counter(appshard.shard_index(found, shard_user.shard_key("skewed", rng)) for _ in range(20000))
    shares = sorted(c / 20000 for c in counts.values())
    # Customer 1 alone has 38 % of the orders (1 / zeta(1.5)); its shard takes its share and a third of the rest.
    assert shares[-1] > 0.42 and shares[0] < 0.2, shares


def test_shard_map_render_names_each_shard_and_its_key() -> None:
    lab = load_lab("db-sharding", parse_overrides(["shards.strategy=range"]))
    found = shard_map(lab.blocks["shards"])
    assert (found["key"], found["routing"]) == ("order_id", "range")
    assert [s["address"] for s in found["shards"]] == ["shards-1:3306", "shards-2:3306", "shards-3:3306"]
    assert found["shards"][0]["from"] == 0 and found["shards"][-1]["to"] is None


def test_app_shards_must_name_a_shards_block(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "s", "title: t\nsummary: s\napp:\n  kind: app\n  shards: nope\n")
    assert problems_of("s") == ["s/lab.yaml:5 app.shards: expected the name of a shards block (none), got 'nope'"]


def test_report_counts_writes_and_errors_by_shard() -> None:
    lab = load_lab("db-sharding")
    lines = [{"t": 100.0 + i / 10, "op": "write", "shard": f"shards-{1 + i % 3}", "ok": i % 3 != 1, "ms": 5.0 + i}
             for i in range(30)]
    lines += [{"t": 101.0, "op": "fan-out", "shard": "*", "ok": True, "ms": 9.0}]
    found = report.summarize(lab.blocks["shards"], lines)
    by_shard = found["writes_by_shard"]
    assert [by_shard[s]["errors"] for s in ("shards-1", "shards-2", "shards-3")] == [0, 10, 0]
    assert by_shard["shards-1"]["share"] == 0.5 and found["by_operation"]["fan-out"]["p50_ms"] == 9.0
    assert report.tables(found)[0]["title"] == "writes per shard (strategy hash, routed by app)"


def _spider_lab(strategy: str) -> Lab:
    return load_lab("db-sharding", parse_overrides(["shards.front=spider", f"shards.strategy={strategy}"]))


def test_spider_partitions_by_the_same_ranges_and_hashes_as_mod() -> None:
    ranged = shard_map(_spider_lab("range").blocks["shards"])
    clause = spider.partition_clause(ranged)
    assert clause.startswith("PARTITION BY RANGE (shard_key) (PARTITION p1 VALUES LESS THAN (")
    assert clause.endswith("PARTITION p3 VALUES LESS THAN (MAXVALUE) REMOTE_SERVER='shard3')")
    assert spider.spider_shard_index(ranged, time.time_ns() // 1000) == 2 and spider.spider_shard_index(ranged, 1) == 0
    hashed = shard_map(_spider_lab("hash").blocks["shards"])
    assert spider.partition_clause(hashed) == (
        "PARTITION BY HASH (shard_key) (PARTITION p1 REMOTE_SERVER='shard1', "
        "PARTITION p2 REMOTE_SERVER='shard2', PARTITION p3 REMOTE_SERVER='shard3')")
    assert [spider.spider_shard_index(hashed, k) for k in (3, 4, 5, -4)] == [0, 1, 2, 1]


def test_spider_statements_name_every_shard_and_remake_only_the_table() -> None:
    statements = spider.spider_statements(_spider_lab("hash").blocks["shards"], "pw")
    assert statements[0] == ("CREATE OR REPLACE SERVER shard1 FOREIGN DATA WRAPPER mysql OPTIONS "
                             "(HOST 'shards-1', DATABASE 'labctl', USER 'app', PASSWORD 'pw', PORT 3306)")
    assert "DROP TABLE IF EXISTS labctl.orders" in statements and "ENGINE=SPIDER" in statements[-1]


def test_spider_front_renders_a_node_and_points_the_app_at_it() -> None:
    lab = _spider_lab("hash")
    files = render_files(lab, {"app": "labctl/app:local", "mariadb": "labctl/mariadb:local"})
    service = yaml.safe_load(files["compose.yaml"])["services"]["shards-spider"]
    assert service["ports"] == ["127.0.0.1:13165:3306"] and service["labels"]["io.labctl.role"] == "spider"
    assert "plugin_load_add = ha_spider" in files["shards/shards-spider.cnf"]
    assert "spider_conn_recycle_mode = 1" in files["shards/shards-spider.cnf"]
    assert json.loads(files["shards/shardmap.json"])["front"] == {"name": "shards-spider",
                                                                  "address": "shards-spider:3306"}
    assert lab.blocks["shards"].spec.services(lab.blocks["shards"])[-1] == "shards-spider"


def test_spider_front_needs_mariadb_and_a_port(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "s", "title: t\nsummary: s\nshards:\n  kind: shards\n  flavor: mysql\n  front: spider\n"
              "  publish: {mysql: 13161}\n")
    assert problems_of("s") == [
        "s/lab.yaml:6 shards.front: Spider is a MariaDB engine: front: spider needs flavor: mariadb",
        "s/lab.yaml:7 shards.publish: front: spider needs publish.spider (the Spider node's host port)"]


def test_report_behind_spider_counts_a_write_on_its_keys_partition() -> None:
    lab = _spider_lab("hash")
    lines = [{"t": 100.0 + k, "op": "write", "shard": "shards-spider", "key": k, "ok": k != 4, "ms": 5.0}
             for k in (3, 4, 5, 6)]
    found = report.summarize(lab.blocks["shards"], lines)["writes_by_shard"]
    assert [(found[s]["ok"], found[s]["errors"]) for s in ("shards-1", "shards-2", "shards-3")] == [(2, 0), (0, 1),
                                                                                                      (1, 0)]
