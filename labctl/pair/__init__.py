"""A master-master pair: two MySQL nodes, each the other's source and replica."""
