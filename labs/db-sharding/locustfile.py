"""Orders written by shard key (the block's strategy picks the key), read back with the key
(one shard) and without it (every shard); each request's shard in shard-<pid>.jsonl."""

from labctl.loadgen.shard_user import ShardUser  # noqa: F401
