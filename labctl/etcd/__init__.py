"""The etcd kind's machinery: its members' state through the v3 JSON gateway, and its drills."""
