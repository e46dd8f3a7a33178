"""What an etcd cluster says about itself, asked member by member through the published client
ports (etcd's v3 JSON gateway: /v3/maintenance/status, /v3/kv/range, /health)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from labctl.errors import LabctlError
from labctl.model.lab import Block, Lab

Progress = Callable[[str], None]
# Keys of the load's writes: KEY_PREFIX + the ledger id.
KEY_PREFIX = "labctl/writes/"
ASK_TIMEOUT_S = 0.5
RANGE_PAGE = 5000


class EtcdError(LabctlError):
    """The cluster could not be asked, or did not answer as expected."""


@dataclass(frozen=True)
class MemberState:
    """One member as it answered (or not) on its published port."""

    name: str
    port: int
    reachable: bool
    healthy: bool = False
    member_id: str = ""
    leader_id: str = ""
    term: int = 0
    revision: int = 0
    raft_index: int = 0
    error: str = ""


@dataclass(frozen=True)
class ClusterView:
    """Every member at one moment, and the leader of the highest term any of them reports."""

    at: float
    members: list[MemberState]
    leader: str | None
    term: int

    @property
    def healthy(self) -> list[str]:
        return [m.name for m in self.members if m.healthy]

    def member(self, name: str) -> MemberState | None:
        return next((m for m in self.members if m.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "leader": self.leader, "term": self.term,
                "members": {m.name: {"reachable": m.reachable, "healthy": m.healthy, "revision": m.revision,
                                     "term": m.term, "leads": m.reachable and m.member_id == m.leader_id}
                            for m in self.members}}


def member_ports(block: Block) -> list[tuple[str, int]]:
    """(member name, published client port) of every member, in order."""
    return list(zip(block.instances(), block.host_ports("client"), strict=True))


def call(port: int, path: str, body: dict[str, Any] | None = None, timeout: float = ASK_TIMEOUT_S) -> dict[str, Any]:
    """One gateway call on 127.0.0.1:port: POST with a JSON body, or GET without; the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="GET" if data is None
                                     else "POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        raise EtcdError(f"port {port}{path}: HTTP {exc.code} {exc.read()[:200].decode(errors='replace')}") from exc
    except (OSError, ValueError) as exc:
        raise EtcdError(f"port {port}{path}: {exc}") from exc


def _healthy(port: int) -> bool:
    # /health answers 503 while the member has no leader or an alarm is raised.
    try:
        return call(port, "/health").get("health") == "true"
    except EtcdError:
        return False


def member_state(name: str, port: int) -> MemberState:
    """What one member says about itself and its leader."""
    try:
        status = call(port, "/v3/maintenance/status", {})
    except EtcdError as exc:
        return MemberState(name, port, False, error=str(exc))
    header = status.get("header", {})
    return MemberState(name, port, True, healthy=_healthy(port), member_id=str(header.get("member_id", "")),
                       leader_id=str(status.get("leader", "0")), term=int(status.get("raftTerm", 0)),
                       revision=int(header.get("revision", 0)), raft_index=int(status.get("raftIndex", 0)))


def _names(members: list[MemberState], block: Block) -> dict[str, str]:
    names = {m.member_id: m.name for m in members if m.reachable}
    wanted = {m.leader_id for m in members if m.reachable and m.leader_id not in ("", "0")}
    if wanted - set(names):
        # The leader did not answer itself: its id is in the member list of any member that did.
        for m in members:
            if m.reachable:
                try:
                    listed = call(m.port, "/v3/cluster/member/list", {}).get("members", [])
                except EtcdError:
                    continue
                names.update({str(item.get("ID")): str(item.get("name")) for item in listed})
                break
    return names


def cluster_view(lab: Lab, block: Block) -> ClusterView:
    """Every member asked at once; the leader is the one reported at the highest term."""
    ports = member_ports(block)
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        members = list(pool.map(lambda item: member_state(*item), ports))
    leading = [m for m in members if m.reachable and m.leader_id not in ("", "0")]
    if not leading:
        return ClusterView(time.time(), members, None, max((m.term for m in members), default=0))
    top = max(leading, key=lambda m: m.term)
    return ClusterView(time.time(), members, _names(members, block).get(top.leader_id), top.term)


def wait_for_leader(lab: Lab, block: Block, timeout: float, progress: Progress) -> ClusterView:
    """Wait until the cluster has a leader and every member is healthy."""
    deadline = time.monotonic() + timeout
    while True:
        view = cluster_view(lab, block)
        if view.leader and len(view.healthy) == block.node_count:
            return view
        if time.monotonic() > deadline:
            down = ", ".join(m.name for m in view.members if not m.healthy) or "none"
            raise EtcdError(f"{block.name}: no leader with every member healthy after {timeout:.0f}s "
                            f"(leader: {view.leader or 'none'}; not healthy: {down}); see "
                            f"'labctl logs {lab.name}'")
        progress(f"{block.name}: waiting for a leader ({len(view.healthy)}/{block.node_count} healthy)")
        time.sleep(0.25)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with `prefix` (etcdctl --prefix)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def keys_with_prefix(block: Block, prefix: str) -> list[str]:
    """Every key under `prefix`, by a linearizable read (a majority agrees), from any member."""
    errors: list[str] = []
    for _, port in member_ports(block):
        try:
            return _range_all(port, prefix)
        except EtcdError as exc:
            errors.append(str(exc))
    raise EtcdError(f"{block.name}: no member could read the writes back: {'; '.join(errors)}")


def _range_all(port: int, prefix: str) -> list[str]:
    keys: list[str] = []
    start, end = prefix, prefix_end(prefix)
    while True:
        answer = call(port, "/v3/kv/range", {"key": _b64(start), "range_end": _b64(end), "keys_only": True,
                                             "limit": RANGE_PAGE}, timeout=10)
        page = [base64.b64decode(kv["key"]).decode() for kv in answer.get("kvs", [])]
        keys.extend(page)
        if not answer.get("more") or not page:
            return keys
        start = page[-1] + "\0"


def present_ids(block: Block, prefixes: list[str]) -> set[str]:
    """The ledger ids under these run prefixes that the cluster holds."""
    found: set[str] = set()
    for prefix in prefixes:
        found.update(key.removeprefix(KEY_PREFIX) for key in keys_with_prefix(block, KEY_PREFIX + prefix))
    return found


def delete_if_value(block: Block, key: str, value: str) -> bool:
    """Delete `key` only while it still holds `value` (one transaction); whether it was deleted."""
    compare = {"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(value)}
    body = {"compare": [compare], "success": [{"requestDeleteRange": {"key": _b64(key)}}]}
    errors: list[str] = []
    for _, port in member_ports(block):
        try:
            return bool(call(port, "/v3/kv/txn", body, timeout=5).get("succeeded"))
        except EtcdError as exc:
            errors.append(str(exc))
    raise EtcdError(f"{block.name}: no member took the transaction on {key}: {'; '.join(errors)}")


def value_of(block: Block, key: str) -> str | None:
    """The value of `key` by a linearizable read, or None when it does not exist."""
    errors: list[str] = []
    for _, port in member_ports(block):
        try:
            kvs = call(port, "/v3/kv/range", {"key": _b64(key)}, timeout=5).get("kvs", [])
        except EtcdError as exc:
            errors.append(str(exc))
            continue
        return base64.b64decode(kvs[0].get("value", "")).decode() if kvs else None
    raise EtcdError(f"{block.name}: no member could read {key}: {'; '.join(errors)}")
