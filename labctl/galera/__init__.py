"""The galera kind's machinery: forming the cluster, its status, and what a drill adds."""
