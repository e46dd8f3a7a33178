"""Unique keys written through etcd's JSON gateway, failing over between members; every
outcome goes in the ledger, which labctl reads back from the cluster afterwards."""

from labctl.loadgen.etcd_user import EtcdWriteUser  # noqa: F401
