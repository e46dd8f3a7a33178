"""What every block kind declares, in one place: the protocol the core talks to.

The core (model, render, lifecycle, chaos, console) never switches on a kind's name; it asks
the block's kind. A kind is one module in this package (or, for a lab of its own, anywhere)
with one `BlockKind` subclass, registered in `labctl.kinds.REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState

FieldProblem = tuple[tuple[str | int, ...], str]
BlockData = dict[str, Any]
Progress = Callable[[str], None]
ConfigTemplate = tuple[str, str, dict[str, object]]
# A fault: (container, parameters, lab name) -> the commands that revert it.
Injector = Callable[[str, dict[str, Any], str], list[list[str]]]


class BlockKind:
    """A kind of building block. Subclasses set the class attributes and override the hooks
    they need; every hook has the behaviour of a plain single-container block."""

    name: ClassVar[str]
    # Schema properties besides `kind`, and keys that must be given.
    properties: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    # Config files rendered from templates/<kind>/<file>.j2 into compose/<lab>/<block>/.
    config_files: ClassVar[tuple[str, ...]] = ()
    # A folder of templates of the kind's own (a kind shipped outside labctl).
    template_dir: ClassVar[Path | None] = None
    # Numbered services (`app-1`, `app-2`, ...) even with one container.
    numbered: ClassVar[bool] = False
    load_balancer: ClassVar[bool] = False
    # Each container publishes its own host port: node N on the block's port + N - 1.
    port_per_node: ClassVar[bool] = False
    scalable: ClassVar[bool] = False
    # Load for the lab is sent from inside this block's container (labctl load, drills).
    sends_load: ClassVar[bool] = False
    # Role names a fault target may take after the block's name (`db.primary`).
    target_roles: ClassVar[tuple[str, ...]] = ()
    # Answers name lookups for the lab (a fault can withdraw a record from it).
    serves_names: ClassVar[bool] = False
    # Serves or passes on HTTP answers naming the app container in X-Served-By; a lab with a
    # block that does not (etcd's own gateway) is not shown `curl ... | grep X-Served-By`.
    names_backends: ClassVar[bool] = True
    # A database that speaks MySQL: the app may write to it, and a haproxy block in front of it
    # routes with this template (None: not a database).
    mysql_router: ClassVar[str | None] = None
    # The URL scheme of that database's endpoints, as a router in front of it shows them.
    database_scheme: ClassVar[str] = "mysql"
    # Holds the lab's data (a database member, a voting arbitrator beside it): its services are
    # the nodes a design needs, as `labctl compare` counts them.
    stores_data: ClassVar[bool] = False

    def schema(self) -> dict[str, Any]:
        """The JSON schema of one block of this kind."""
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", *self.required],
            "properties": {"kind": {"const": self.name}, **self.properties},
        }

    def node_count(self, params: BlockData) -> int:
        """How many containers a block with these parameters runs."""
        return 1

    def instances(self, block: Block) -> list[str]:
        """Service names of a block, in order."""
        count = self.node_count(block.params)
        if not self.numbered and count == 1:
            return [block.service_base]
        return [f"{block.service_base}-{i}" for i in range(1, count + 1)]

    def services(self, block: Block) -> list[str]:
        """Every service the block runs: its instances and any helper beside them that is not a
        node (Galera's arbitrator). `up` waits for each and keeps each."""
        return self.instances(block)

    def host_ports(self, block: Block, endpoint: str) -> list[int]:
        """Host ports of one published endpoint (one per container for kinds that publish each)."""
        base = block.publish.get(endpoint)
        if base is None:
            return []
        return [base + i for i in range(block.node_count)] if self.port_per_node else [base]

    def port_span(self, params: BlockData) -> int:
        """How many consecutive host ports one published endpoint takes."""
        return self.node_count(params) if self.port_per_node else 1

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        """URLs of one published endpoint, by the name `status` and `up` show them under."""
        scheme = "https" if endpoint == "https" else "http"
        return {endpoint: f"{scheme}://{lab.bind}:{port}"}

    def image_role(self, block: Block) -> str:
        """The image (role) the block's containers run."""
        return self.name

    def compose_template(self) -> str:
        """The template of the block's Compose services."""
        return f"blocks/{self.name}.yaml.j2"

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        """(template, file relative to the block's folder, extra context) for its config files."""
        return [(f"{self.name}/{file}.j2", file, {}) for file in self.config_files]

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        """Problems in what this block names of other blocks (the schema has passed)."""
        return []

    def named_volumes(self, block: Block) -> list[str]:
        """Named volumes the block's services mount (kept when a container is recreated)."""
        return []

    def networks(self, lab: Lab, block: Block) -> list[str]:
        """Networks the lab has besides `lab` because of this block (a second site's)."""
        return []

    def placement(self, lab: Lab, block: Block) -> dict[str, tuple[str, list[str]]]:
        """Service -> (network, aliases) for services this block places: a service it names
        joins that network instead of `lab`, and answers those extra names there."""
        return {}

    def lab_subnet(self, block: Block) -> str | None:
        """The subnet the lab network must have for the block's fixed addresses (None: any)."""
        return None

    def prepare_folder(self, lab: Lab, block: Block, folder: Path) -> None:
        """Files made once per rendered folder besides the templates (secrets, certificates)."""

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        """Work after every container is healthy (joining replicas, forming a cluster)."""

    def reload(self, lab: Lab, block: Block, progress: Progress) -> None:
        """Make the block's running container use its re-rendered config (default: nothing to do)."""

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        """The containers holding one of `target_roles` right now."""
        return members

    def summary(self, block: Block) -> str:
        """How `labctl list` names the block."""
        return f"{block.name} ({self.name})"

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        """Commands `up` suggests for this block besides the common ones."""
        return []

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        """Hook the block into a drill (watch replication, handle its own step kinds)."""

    def db_status(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        """What `labctl db status` shows for a database of its own design (JSON-ready: `title`,
        `columns` and `nodes`, one dict per node keyed by column); None: the db kind's view."""
        return None

    def db_check(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        """What `labctl db check` reports for a database of its own design (JSON-ready:
        `consistent`, `reference` and `nodes`, each with its `tables`); None: the db kind's check."""
        return None

    def faults(self) -> dict[str, Injector]:
        """Faults only this kind of block can take, by name (`labctl chaos LAB NAME TARGET`)."""
        return {}

    def load_environment(self, lab: Lab, block: Block) -> dict[str, str]:
        """Environment variables the lab's Locust users read for this block (what a write does)."""
        return {}

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        """What a `labctl load` run adds to its summary for this block (a db: its writes checked)."""
        return {}

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        """(figure, value, meaning) rows this kind adds to a drill's table and report.md, from
        the parts of drill.json it wrote."""
        return []

    def drill_steps(self) -> dict[str, Any]:
        """Step keys this kind handles in drill files, with their schema."""
        return {}

    def drill_expectations(self) -> dict[str, Expectation]:
        """Expectations this kind measures in drill files (name -> Expectation)."""
        return {}


class Expectation:
    """An expectation a kind adds to drill files: its schema, where its observed value is in
    the drill's measurements, and when it passes."""

    def __init__(self, schema: dict[str, Any], observe: Callable[[dict[str, Any]], Any],
                 passes: Callable[[Any, Any], bool]) -> None:
        self.schema = schema
        self.observe = observe
        self.passes = passes


def node_urls(lab: Lab, block: Block, scheme: str, port: int, node: int | None) -> dict[str, str]:
    """URL of each node (or the `node`-th) of a block whose nodes publish consecutive ports."""
    return {instance: f"{scheme}://{lab.bind}:{port + index}"
            for index, instance in enumerate(block.instances()) if node is None or node == index}


def ledger_expectations() -> dict[str, Expectation]:
    """The expectations every kind with a lost-write ledger shares: acknowledged writes lost,
    the time until writes were accepted again, and read-backs that missed an acknowledged write."""
    from labctl.durations import DRILL_DURATION, parse_duration

    return {
        "max_lost_writes": Expectation(
            {"type": "integer", "minimum": 0}, lambda m: m.get("writes", {}).get("lost"),
            lambda e, o: o is not None and o <= e),
        "rto_within": Expectation(
            DRILL_DURATION, lambda m: m.get("rto_s"), lambda e, o: o is not None and o <= parse_duration(str(e))),
        "max_stale_reads": Expectation(
            {"type": "integer", "minimum": 0}, lambda m: m.get("stale_reads", {}).get("stale"),
            lambda e, o: o is not None and o <= e),
    }


def ledger_load_report(run_dir: Path, progress: Progress, read_from: str,
                       writes_report: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A load run's `db` part for a kind with a lost-write ledger: every write of the run read
    back (from `read_from`), or nothing when the run wrote no ledger."""
    from labctl.experiments import ledger

    if not any(run_dir.glob(ledger.LEDGER_GLOB)):
        return {}
    progress(f"reading every write back from {read_from}")
    return {"db": writes_report()}


def blocks_of(blocks: dict[str, BlockData], kind: str) -> list[str]:
    """Names of the (raw, validated) blocks of one kind, in file order."""
    return [name for name, block in blocks.items() if block["kind"] == kind]


def database_blocks(blocks: dict[str, BlockData]) -> list[str]:
    """Names of the (raw, validated) blocks of every kind that is a database the app can write to."""
    from labctl.kinds import REGISTRY

    return [name for name, block in blocks.items()
            if block["kind"] in REGISTRY and REGISTRY[block["kind"]].mysql_router is not None]


def reference(name: str, block: BlockData, key: str, known: list[str], what: str) -> list[FieldProblem]:
    """The problem with `block[key]` naming a block that is not among `known`, if any."""
    target = block.get(key)
    if target is None:
        return [((name,), f"missing required key '{key}'")]
    if target not in known:
        return [((name, key), f"expected the name of {what} ({', '.join(known) or 'none'}), got {target!r}")]
    return []
