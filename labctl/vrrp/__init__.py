"""The keepalived kind's machinery: who holds the floating address, and its drills."""
