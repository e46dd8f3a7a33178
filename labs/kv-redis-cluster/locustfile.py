"""Unique keys SET into the cluster and read back with GET, routed by hash slot; every MOVED
and ASK redirect is followed and counted, every outcome goes in the write ledger."""

from labctl.loadgen.redis_user import RedisWriteUser  # noqa: F401
