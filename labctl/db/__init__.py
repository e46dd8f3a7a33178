"""MySQL and MariaDB primary-replica labs: setup, status, failover and consistency checks."""
