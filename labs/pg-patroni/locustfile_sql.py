"""Unique rows INSERTed through HAProxy's writer port (the member Patroni made primary), every
outcome in the write ledger, with no app in between:
`labctl load pg-patroni --locustfile labs/pg-patroni/locustfile_sql.py`."""

from labctl.loadgen.pg_user import PgWriteUser  # noqa: F401
