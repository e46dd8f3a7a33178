"""The shards kind's machinery: schema at `up`, `labctl db status`, per-shard load and drill reports."""
