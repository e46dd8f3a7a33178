"""What an INSERT's failure says about whether it committed: the load's user classifies with
it (kept apart from the user, which imports Locust, and Locust patches the interpreter)."""

from __future__ import annotations

import pg8000.native

from labctl.experiments.ledger import FAILED, UNKNOWN

# Refused by postgres before anything was written: read-only transaction, cannot connect now,
# bad password, no such database.
REFUSED_STATES = ("25006", "57P03", "28P01", "3D000")


class NotConnected(Exception):
    """No connection could be made: nothing was sent."""


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a postgres error reply, or '' for a client-side failure."""
    if isinstance(exc, pg8000.native.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return str(exc.args[0].get("C", ""))
    return ""


def outcome_of(exc: BaseException) -> str:
    """failed when the INSERT surely did not commit; unknown when it may have."""
    if isinstance(exc, NotConnected | ConnectionRefusedError):
        return FAILED
    state = sqlstate(exc)
    if state in REFUSED_STATES or state.startswith("23"):
        return FAILED
    return UNKNOWN
