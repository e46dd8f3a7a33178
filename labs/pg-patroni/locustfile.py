"""Unique writes through the sample app (POST /write), which INSERTs them through HAProxy's
writer port into the member Patroni made primary, and reads each acknowledged one back
through the reader port (a replica): every outcome in the write ledger, stale reads counted.
locustfile_sql.py skips the app and INSERTs through the writer port itself."""

from labctl.loadgen.db_user import DbWriteUser  # noqa: F401
