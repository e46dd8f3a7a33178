"""The Redis Cluster kind's machinery: a RESP client, the cluster's own view, drills."""
