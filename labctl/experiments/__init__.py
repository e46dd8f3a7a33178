"""Load, chaos, drills, compare, sweep, ledger and timeline."""
