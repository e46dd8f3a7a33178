"""Repeated sharding loads: per-shard share of writes for each key strategy, and keyed against
fan-out read latency, with the app routing (the baseline) and with a MariaDB Spider node
routing, on one db-sharding lab switched with `labctl up --set`.

Each run loads every front and strategy in turn (`labctl load db-sharding --json`), so all
of them see the same machine. Shares and p50 latencies are medians over the runs; the ratio
columns are fan-out/keyed and spider/app. Last, with the Spider front still up, the hop
in SQL alone: keyed reads from the host straight to shards-1 against through Spider.

Usage: .venv/bin/python bench/sharding.py [--runs 3] [--seconds 10] [--users 4]
       [--fronts app,spider] [--strategies hash,range,skewed]
Targets (issue 14): hash within 10 % of an even share on every shard; range: the last shard
takes nearly all new writes (90 % or more); a fan-out read slower than a keyed one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAB = "db-sharding"
OPS = ("write", "keyed", "fan-out")
SHARD_1_PORT, SPIDER_PORT = 13161, 13165  # labs/db-sharding/lab.yaml


def labctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl", *args], cwd=REPO, capture_output=True, text=True)


def one_load(front: str, strategy: str, seconds: int, users: int) -> dict[str, Any] | None:
    """One load's shares (shard order) and p50 per operation; None when it did not run."""
    up = labctl("up", LAB, "--set", f"shards.front={front}", "--set", f"shards.strategy={strategy}")
    load = up if up.returncode != 0 else labctl("load", LAB, "--users", str(users), "--duration", f"{seconds}s",
                                                "--json")
    if load.returncode != 0 or not load.stdout.strip():
        print(f"  {front}/{strategy}: {(load.stderr.strip().splitlines() or ['no output'])[-1]}", flush=True)
        return None
    report = json.loads(load.stdout)["shards"]
    ops = report["by_operation"]
    return {"shares": [f["share"] for f in report["writes_by_shard"].values()],
            "writes": sum(f["ok"] for f in report["writes_by_shard"].values()),
            **{op: ops[op]["p50_ms"] for op in OPS}, "errors": sum(ops[op]["errors"] for op in OPS)}


def medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-figure medians over runs (shares shard by shard)."""
    if not rows:
        return {}
    shares = [statistics.median(run["shares"][i] for run in rows) for i in range(len(rows[0]["shares"]))]
    found = {key: statistics.median(run[key] for run in rows) for key in ("writes", "errors", *OPS)}
    return {"shares": shares, **found}


def verdict(strategy: str, shares: list[float]) -> str:
    """Whether the median shares meet the issue's target for the strategy."""
    even = 1 / len(shares)
    if strategy == "hash":
        return "even (within 10 %)" if all(abs(s - even) <= even / 10 for s in shares) else "NOT within 10 %"
    if strategy == "range":
        return "last shard hot" if shares[-1] >= 0.9 else "last shard NOT >= 90 %"
    return f"hottest {max(shares):.0%}"


def print_table(found: dict[tuple[str, str], dict[str, Any]], runs: int, seconds: int) -> None:
    print(f"\n{LAB}: medians of {runs} runs of {seconds} s per front and strategy")
    print(f"  {'front':7}{'strategy':9}{'shares (shard 1/2/3)':24}{'writes':>8}{'write p50':>11}{'keyed p50':>11}"
          f"{'fan-out p50':>13}{'fan/keyed':>11}  target")
    for (front, strategy), m in found.items():
        if not m:
            print(f"  {front:7}{strategy:9}no run finished")
            continue
        shares = "/".join(f"{s:.1%}" for s in m["shares"])
        print(f"  {front:7}{strategy:9}{shares:24}{m['writes']:>8.0f}{m['write']:>9.1f}ms{m['keyed']:>9.1f}ms"
              f"{m['fan-out']:>11.1f}ms{m['fan-out'] / m['keyed']:>10.2f}x  {verdict(strategy, m['shares'])}")


def print_ratios(found: dict[tuple[str, str], dict[str, Any]], strategies: list[str]) -> None:
    print("\n  spider/app p50 (the extra hop through Spider)")
    for strategy in strategies:
        app, spider = found.get(("app", strategy)), found.get(("spider", strategy))
        if app and spider:
            print(f"  {strategy:9}" + "".join(f"{op} {spider[op] / app[op]:.2f}x  " for op in OPS)
                  + f"(p50 ms app {'/'.join(f'{app[op]:.1f}' for op in OPS)}, "
                  f"spider {'/'.join(f'{spider[op]:.1f}' for op in OPS)})")


def keyed_read_ms(port: int, reads: int) -> float:
    """Median ms of keyed reads (one shard's key) on one connection from the host, as the app."""
    import mysql.connector

    from labctl.db.secrets import load_secrets

    connection = mysql.connector.connect(host="127.0.0.1", port=port, user="app", database="labctl",
                                         password=load_secrets(LAB)["app"], autocommit=True, use_pure=True)
    cursor = connection.cursor()
    times = []
    for _ in range(reads):
        began = time.perf_counter()
        cursor.execute("SELECT id FROM orders WHERE id = %s AND shard_key = %s", ("absent", 3))
        cursor.fetchall()
        times.append((time.perf_counter() - began) * 1000)
    connection.close()
    return statistics.median(times)


def print_hop(runs: int, reads: int = 200) -> None:
    """The extra hop in SQL alone: shards-1 straight, then through Spider, alternately."""
    straight, spider = [], []
    for _ in range(runs):
        straight.append(keyed_read_ms(SHARD_1_PORT, reads))
        spider.append(keyed_read_ms(SPIDER_PORT, reads))
    print(f"\n  hop: keyed read p50 over {reads} reads, {runs} runs: straight to shards-1 "
          f"{statistics.median(straight):.2f} ms, through Spider {statistics.median(spider):.2f} ms "
          f"({statistics.median(spider) / statistics.median(straight):.2f}x; runs "
          f"{', '.join(f'{a:.2f}/{b:.2f}' for a, b in zip(straight, spider, strict=True))})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--fronts", default="app,spider")
    parser.add_argument("--strategies", default="hash,range,skewed")
    args = parser.parse_args()
    fronts, strategies = args.fronts.split(","), args.strategies.split(",")
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {(f, s): [] for f in fronts for s in strategies}
    for run in range(args.runs):
        for front in fronts:
            for strategy in strategies:
                row = one_load(front, strategy, args.seconds, args.users)
                if row:
                    rows[(front, strategy)].append(row)
                    print(f"run {run + 1} {front:6} {strategy:7} shares {'/'.join(f'{s:.1%}' for s in row['shares'])}"
                          f"  p50 ms {'/'.join(f'{row[op]:.1f}' for op in OPS)}  errors {row['errors']}", flush=True)
    hop = fronts[-1] == "spider" and bool(rows[("spider", strategies[-1])])
    if hop:
        print_hop(args.runs)
    labctl("down", LAB)
    found = {key: medians(found_rows) for key, found_rows in rows.items()}
    print_table(found, args.runs, args.seconds)
    print_ratios(found, strategies)


if __name__ == "__main__":
    main()
