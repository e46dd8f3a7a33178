"""What a Patroni cluster says about itself, node by node through each node's published REST
API (GET /patroni, /cluster; PATCH /config), its set-up at `labctl up`, and its data read
through postgres's published ports."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pg8000.native

from labctl.db.secrets import ensure_secrets, load_secrets
from labctl.errors import LabctlError
from labctl.model.lab import Block, Lab

Progress = Callable[[str], None]
ASK_TIMEOUT_S = 1.0
# `db status` is read by a person or a test, not timed.
STATUS_TIMEOUT_S = 5.0
DATABASE = "postgres"
SCHEMA = [
    "CREATE SCHEMA IF NOT EXISTS labctl",
    "CREATE TABLE IF NOT EXISTS labctl.writes (id VARCHAR(64) PRIMARY KEY, served_by VARCHAR(64), "
    "created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())",
]
# The dynamic settings `up` makes the running cluster use (bootstrap.dcs is read only once).
DYNAMIC = ("ttl", "loop_wait", "retry_timeout", "maximum_lag_on_failover", "synchronous_mode", "failsafe_mode")
REPLICA_ROLES = ("replica", "sync_standby", "quorum_standby")
# Patroni claims /initialize in etcd before it runs initdb. When etcd applies the claim but its
# reply is lost (a timeout on a busy machine, patroni/patroni#527), no member bootstraps and each
# waits for a leader forever; after this long with every member stopped, `up` releases the claim.
STALLED_BOOTSTRAP_S = 20.0


class PatroniError(LabctlError):
    """The cluster could not be asked, or did not answer as expected."""


@dataclass(frozen=True)
class MemberView:
    """One node as its own Patroni answered (or not) on its published API port."""

    name: str
    reachable: bool
    role: str = ""
    state: str = ""
    timeline: int = 0
    error: str = ""


@dataclass(frozen=True)
class ClusterView:
    """Every node at one moment, and the cluster as the DCS records it (from /cluster)."""

    at: float
    members: list[MemberView]
    listed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def leader(self) -> str | None:
        """The member holding the leader lock, by the DCS, else by its own word."""
        held = [m["name"] for m in self.listed if m.get("role") == "leader"]
        if held:
            return str(held[0])
        own = [m.name for m in self.members if m.reachable and m.role == "primary"]
        return own[0] if len(own) == 1 else None

    @property
    def primaries(self) -> list[str]:
        """Members that say they run postgres as a primary (more than one: split brain)."""
        return [m.name for m in self.members if m.reachable and m.role == "primary" and m.state == "running"]

    def member(self, name: str) -> MemberView | None:
        return next((m for m in self.members if m.name == name), None)

    def streaming(self) -> list[str]:
        """Replicas the DCS lists as streaming from the leader."""
        return [str(m["name"]) for m in self.listed if m.get("role") in REPLICA_ROLES
                and m.get("state") == "streaming"]

    def sync_standbys(self) -> list[str]:
        return [str(m["name"]) for m in self.listed if m.get("role") == "sync_standby"]


def member_ports(block: Block) -> list[tuple[str, int, int]]:
    """(node, published postgres port, published API port) of every node, in order."""
    return list(zip(block.instances(), block.host_ports("postgres"), block.host_ports("api"), strict=True))


def api(port: int, path: str, body: dict[str, Any] | None = None, timeout: float = ASK_TIMEOUT_S,
        method: str = "GET") -> tuple[int, Any]:
    """One REST call on 127.0.0.1:port; (status, JSON answer). Patroni answers health endpoints
    with 503 and the same JSON, so an HTTP error is an answer too."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json(exc.read())
    except (OSError, ValueError) as exc:
        raise PatroniError(f"port {port}{path}: {exc}") from exc


def _json(text: bytes) -> Any:
    try:
        return json.loads(text or b"{}")
    except ValueError:
        return {"text": text[:200].decode(errors="replace")}


def member_view(name: str, port: int, timeout: float) -> MemberView:
    """What one node's Patroni says about itself."""
    try:
        _, found = api(port, "/patroni", timeout=timeout)
    except PatroniError as exc:
        return MemberView(name, False, error=str(exc))
    return MemberView(name, True, role=str(found.get("role", "")), state=str(found.get("state", "")),
                      timeline=int(found.get("timeline") or 0))


def cluster_view(block: Block, timeout: float = ASK_TIMEOUT_S) -> ClusterView:
    """Every node asked in parallel, and the member list of the first that gives one."""
    ports = member_ports(block)
    at = time.time()
    with ThreadPoolExecutor(max_workers=len(ports) + 1) as pool:
        views = pool.map(lambda p: member_view(p[0], p[2], timeout), ports)
        listed = pool.submit(_listed, [p[2] for p in ports], timeout)
        return ClusterView(at, list(views), listed.result())


def _listed(ports: list[int], timeout: float) -> list[dict[str, Any]]:
    for port in ports:
        try:
            status, found = api(port, "/cluster", timeout=timeout)
        except PatroniError:
            continue
        if status == 200 and found.get("members"):
            return list(found["members"])
    return []


def formed(view: ClusterView, block: Block, settled: bool = True) -> bool:
    """One leader running, every other node streaming from it (and, once the block's settings
    are in the DCS, in synchronous mode, one of them its synchronous standby)."""
    leader = view.leader
    if leader is None or view.primaries != [leader]:
        return False
    if len(view.streaming()) != block.node_count - 1:
        return False
    return not (settled and block.params.get("synchronous_mode")) or bool(view.sync_standbys())


def describe(view: ClusterView) -> str:
    """One line: each node's role and state, or why it does not answer."""
    listed = {str(m["name"]): m for m in view.listed}
    return ", ".join(f"{m.name} {listed.get(m.name, {}).get('role', m.role) or '?'}/"
                     f"{listed.get(m.name, {}).get('state', m.state) or '?'}" if m.reachable else f"{m.name} down"
                     for m in view.members)


def nobody_bootstraps(view: ClusterView) -> bool:
    """No leader, and every node answers that its postgres is stopped."""
    return view.leader is None and all(m.reachable and m.state == "stopped" for m in view.members)


def wait_formed(block: Block, timeout: float, progress: Progress, settled: bool = True,
                on_stall: Callable[[], None] | None = None) -> ClusterView:
    """Wait until Patroni reports one leader and every other node streaming; `on_stall` runs
    once nobody has bootstrapped for STALLED_BOOTSTRAP_S."""
    deadline = time.monotonic() + timeout
    shown = ""
    stalled_since: float | None = None
    while True:
        view = cluster_view(block)
        if formed(view, block, settled):
            return view
        stalled_since = (stalled_since or time.monotonic()) if nobody_bootstraps(view) else None
        if on_stall and stalled_since and time.monotonic() - stalled_since > STALLED_BOOTSTRAP_S:
            on_stall()
            stalled_since = None
        line = describe(view)
        if line != shown:
            progress(f"{block.name}: {line}")
            shown = line
        if time.monotonic() > deadline:
            raise PatroniError(f"{block.name} did not report one leader and {block.node_count - 1} streaming "
                               f"replicas within {timeout:.0f} s: {line}")
        time.sleep(0.5)


def ensure_env_file(folder: Path) -> None:
    """The lab's passwords as Patroni reads them from its environment."""
    from labctl.db.secrets import FOLDER, _write_private

    passwords = ensure_secrets(folder)
    _write_private(folder / FOLDER / "patroni.env",
                   f"PATRONI_SUPERUSER_USERNAME=postgres\nPATRONI_SUPERUSER_PASSWORD={passwords['root']}\n"
                   f"PATRONI_REPLICATION_USERNAME=replicator\nPATRONI_REPLICATION_PASSWORD={passwords['repl']}\n")


def dynamic_config(block: Block) -> dict[str, Any]:
    """The settings of the block that live in the DCS, as PATCH /config takes them."""
    return {key: block.params[key] for key in DYNAMIC}


def apply_config(block: Block, leader: str, progress: Progress) -> None:
    """Make the running cluster use the block's ttl, loop_wait, ... (a no-op when it does)."""
    port = next(p[2] for p in member_ports(block) if p[0] == leader)
    _, current = api(port, "/config", timeout=STATUS_TIMEOUT_S)
    wanted = dynamic_config(block)
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    if not changed:
        return
    status, answer = api(port, "/config", changed, STATUS_TIMEOUT_S, method="PATCH")
    if status != 200:
        raise PatroniError(f"{block.name}: PATCH /config on {leader} answered {status}: {answer}")
    progress(f"{block.name}: cluster settings now " + ", ".join(f"{k}={json.dumps(v)}" for k, v in changed.items()))


def connect(lab: Lab, block: Block, node: str, timeout: float = 10.0) -> pg8000.native.Connection:
    """A superuser connection to one node's postgres through its published port."""
    port = next(p[1] for p in member_ports(block) if p[0] == node)
    try:
        return pg8000.native.Connection("postgres", host="127.0.0.1", port=port, database=DATABASE,
                                        password=load_secrets(lab.name)["root"], timeout=timeout)
    except (pg8000.native.Error, OSError) as exc:
        raise PatroniError(f"{node}: cannot connect to postgres on port {port}: {exc}") from exc


def create_schema(lab: Lab, block: Block, leader: str) -> None:
    """The ledger's table and the load's user, made on the primary (they stream to the others)."""
    app = load_secrets(lab.name)["app"].replace("'", "''")
    connection = connect(lab, block, leader)
    try:
        for statement in SCHEMA:
            connection.run(statement)
        exists = connection.run("SELECT 1 FROM pg_roles WHERE rolname = 'app'")
        connection.run(f"{'ALTER' if exists else 'CREATE'} ROLE app LOGIN PASSWORD '{app}'")
        connection.run("GRANT USAGE ON SCHEMA labctl TO app")
        connection.run("GRANT SELECT, INSERT ON labctl.writes TO app")
    finally:
        connection.close()


def ensure_cluster(lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
    """`up`: one leader and streaming replicas, the block's settings in the DCS, the schema."""
    started = time.monotonic()
    with _logs_on_failure(lab, block):
        view = wait_formed(block, timeout, progress, settled=False,
                           on_stall=lambda: release_initialize_claim(lab, block, progress))
        apply_config(block, str(view.leader), progress)
        view = wait_formed(block, timeout, progress)
    create_schema(lab, block, str(view.leader))
    sync = f", synchronous standby {', '.join(view.sync_standbys())}" if view.sync_standbys() else ""
    progress(f"{block.name}: leader {view.leader} (timeline {_timeline(view)}), "
             f"{', '.join(view.streaming())} streaming{sync}, after {time.monotonic() - started:.1f} s")


@contextlib.contextmanager
def _logs_on_failure(lab: Lab, block: Block) -> Iterator[None]:
    """A PatroniError with each node's last Patroni log lines, which say why it waits."""
    from labctl.runtime import local_runtime

    try:
        yield
    except PatroniError as exc:
        tails = [f"--- {node}: last log lines:\n{local_runtime().logs_tail(f'{lab.project}-{node}', 8) or '    (none)'}"
                 for node in block.instances()]
        raise PatroniError("\n".join([str(exc), *tails])) from exc


def release_initialize_claim(lab: Lab, block: Block, progress: Progress) -> None:
    """Delete a bootstrap claim that never became a cluster (its value is the system id once
    initdb has run, empty before), so that a member claims it again and bootstraps."""
    from labctl.etcd import cluster as etcd

    dcs = lab.blocks[str(block.params["dcs"])]
    key = f"/service/{lab.project}/initialize"
    try:
        released = etcd.value_of(dcs, key) == "" and etcd.delete_if_value(dcs, key, "")
    except etcd.EtcdError as exc:
        progress(f"{block.name}: nobody bootstraps, and {key} could not be read or released: {exc}")
        return
    if released:
        progress(f"{block.name}: every member waited {STALLED_BOOTSTRAP_S:.0f} s for a bootstrap that never "
                 f"started ({key} claimed, no initdb run, as when etcd's reply to the claim is lost); "
                 f"released the claim")


def _timeline(view: ClusterView) -> int:
    member = view.member(str(view.leader))
    return member.timeline if member else 0


def status(lab: Lab, block: Block) -> dict[str, Any]:
    """`labctl db status`: each member's role, state, timeline and lag, as Patroni reports them."""
    view = cluster_view(block, STATUS_TIMEOUT_S)
    listed = {str(m["name"]): m for m in view.listed}
    rows = []
    for member in view.members:
        row: dict[str, Any] = {"member": member.name, "reachable": member.reachable}
        entry = listed.get(member.name, {})
        if member.reachable:
            row.update(role=entry.get("role", member.role), state=entry.get("state", member.state),
                       timeline=entry.get("timeline", member.timeline), lag=_lag(entry))
        else:
            row.update(role=entry.get("role", "-"), state="unreachable", error=member.error)
        rows.append(row)
    settings = ", ".join(f"{k}={json.dumps(block.params[k])}" for k in DYNAMIC[:3] + DYNAMIC[4:])
    return {"lab": lab.name, "kind": "patroni",
            "title": f"{lab.name}: Patroni cluster {block.name}, leader {view.leader or 'none'} ({settings})",
            "leader": view.leader, "formed": formed(view, block),
            "columns": ["member", "role", "state", "timeline", "lag", "error"],
            "headings": {"lag": "lag (MB)"}, "nodes": rows}


def _lag(entry: dict[str, Any]) -> Any:
    # /cluster gives a replica's lag in MB behind the leader ("unknown" while it has none).
    return entry.get("lag", "-" if entry.get("role") == "leader" else "unknown")


def present_ids(lab: Lab, block: Block, prefixes: list[str], timeout: float = 60.0) -> set[str]:
    """The ids of the ledger's runs (by id prefix) the current primary holds; waits for one."""
    deadline = time.monotonic() + timeout
    while (leader := _running_leader(cluster_view(block))) is None:
        if time.monotonic() > deadline:
            raise PatroniError(f"no {block.name} primary to read the writes back from; see 'labctl db status'")
        time.sleep(0.5)
    connection = connect(lab, block, leader)
    try:
        found: set[str] = set()
        for prefix in prefixes:
            rows = connection.run("SELECT id FROM labctl.writes WHERE id LIKE :p", p=f"{prefix}%")
            found.update(str(row[0]) for row in rows)
        return found
    finally:
        connection.close()


def _running_leader(view: ClusterView) -> str | None:
    return view.leader if view.leader is not None and view.primaries == [view.leader] else None


def check(lab: Lab, block: Block) -> dict[str, Any]:
    """`labctl db check`: rows and a checksum of the ledger's table on every node, against the
    primary's (a replica is given a few seconds to replay what the primary has)."""
    view = wait_formed(block, 30, lambda _: None)
    leader = str(view.leader)
    reference = _table_summary(lab, block, leader)
    rows = []
    for name in block.instances():
        summary = reference if name == leader else _caught_up(lab, block, name, reference)
        rows.append({"node": name, "tables": {"labctl.writes": summary}, "same_as_primary": summary == reference})
    return {"lab": lab.name, "primary": leader, "compared_with": leader,
            "consistent": all(r["same_as_primary"] for r in rows), "nodes": rows, "unreachable": []}


def _caught_up(lab: Lab, block: Block, node: str, reference: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (summary := _table_summary(lab, block, node)) != reference and time.monotonic() < deadline:
        time.sleep(0.5)
    return summary


def _table_summary(lab: Lab, block: Block, node: str) -> dict[str, Any]:
    connection = connect(lab, block, node)
    try:
        [[rows, checksum]] = connection.run("SELECT count(*), coalesce(md5(string_agg(id, ',' ORDER BY id)), '') "
                                            "FROM labctl.writes")
        return {"rows": int(rows), "checksum": str(checksum)}
    finally:
        connection.close()


def load_environment(lab: Lab, block: Block) -> dict[str, str]:
    """Where the load's Postgres user writes: the writer port of the HAProxy in front of the block."""
    writer = next((b.publish.get("writer") for b in lab.blocks.values()
                   if b.is_lb and b.params.get("backends") == block.name), None)
    environment = {"LABCTL_PG_NODES": ",".join(f"{name}:{port}" for name, port, _ in member_ports(block))}
    if writer is not None:
        environment["LABCTL_PG_WRITER"] = str(writer)
    with contextlib.suppress(LabctlError):
        environment["LABCTL_PG_PASSWORD"] = load_secrets(lab.name)["app"]
    return environment
