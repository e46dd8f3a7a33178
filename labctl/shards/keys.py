"""Shard keys as the sharding lab's Locust user draws them, without Locust (so the unit tests
can import them): uniform customers, Zipf-like customers, or time-ordered order ids."""

from __future__ import annotations

import os
import random
import time
from itertools import accumulate

CUSTOMERS = int(os.environ.get("LABCTL_SHARD_CUSTOMERS", "10000"))
ZIPF = float(os.environ.get("LABCTL_SHARD_ZIPF", "1.2"))
_zipf_weights: list[list[float]] = []


def zipf_weights(customers: int, exponent: float) -> list[float]:
    """Cumulative weights of customers 1..n, customer k weighing 1 / k**exponent."""
    return list(accumulate(1.0 / k ** exponent for k in range(1, customers + 1)))


def shard_key(strategy: str, rng: random.Random) -> int:
    """The next write's shard key under a strategy."""
    if strategy == "range":
        return time.time_ns() // 1000
    if strategy == "skewed":
        if not _zipf_weights:
            _zipf_weights.append(zipf_weights(CUSTOMERS, ZIPF))
        return rng.choices(range(1, CUSTOMERS + 1), cum_weights=_zipf_weights[0])[0]
    return rng.randint(1, CUSTOMERS)


