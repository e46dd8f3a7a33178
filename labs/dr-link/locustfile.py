"""Unique writes through the app, each read back from a replica; every outcome goes in the ledger.

labctl reads the ledger after a drill to count lost, recovered and unexpected writes.
"""

from labctl.loadgen.db_user import DbWriteUser  # noqa: F401
