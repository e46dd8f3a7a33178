"""MySQL Group Replication: the group's set-up, status and drills."""
