"""A block kind added from the test folder alone: registered through the registry, with its
own templates, then validated, rendered and targeted with no module under labctl/ changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from labctl import kinds
from labctl.errors import LabConfigError
from labctl.experiments import targets
from labctl.kinds.base import BlockData, BlockKind, FieldProblem, blocks_of
from labctl.model.lab import Block, Lab, load_lab
from labctl.render import render_files
from labctl.runtime.inventory import ServiceState

TEMPLATES = Path(__file__).parent / "data" / "memo_kind" / "templates"


class MemoKind(BlockKind):
    """A made-up replicated cache: `nodes` containers, one of them the leader."""

    name = "memo"
    properties: ClassVar[dict[str, Any]] = {
        "nodes": {"type": "integer", "minimum": 1, "maximum": 5},
        "size": {"type": "integer", "minimum": 1},
        "peer": {"type": "string", "description": "the name of an app block"},
    }
    defaults: ClassVar[dict[str, Any]] = {"nodes": 3, "size": 64}
    config_files = ("memo.conf",)
    template_dir = TEMPLATES
    numbered = True
    target_roles = ("leader",)

    def node_count(self, params: BlockData) -> int:
        return int(params.get("nodes", 3))

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        apps = blocks_of(blocks, "app")
        if "peer" in block and block["peer"] not in apps:
            return [((name, "peer"), f"expected the name of an app block ({', '.join(apps)}), got {block['peer']!r}")]
        return []

    def resolve_role(self, lab: Lab, block: Block, role: str, members: list[ServiceState]) -> list[ServiceState]:
        return [m for m in members if m.name.endswith("-2")]  # the made-up leader


@pytest.fixture()
def memo_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    kinds.register(MemoKind())
    monkeypatch.setenv("LABCTL_LABS_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "memo-lab"
    folder.mkdir()
    (folder / "lab.yaml").write_text("title: Memo\nsummary: a kind from the tests\n"
                                     "app: {kind: app, replicas: 2}\n"
                                     "cache:\n  kind: memo\n  size: 128\n  peer: app\n", encoding="utf-8")
    (folder / "README.md").write_text("# guide\n", encoding="utf-8")
    yield "memo-lab"
    kinds.unregister("memo")


def test_a_registered_kind_validates_with_its_schema_and_checks(memo_lab: str) -> None:
    lab = load_lab(memo_lab)
    assert lab.blocks["cache"].params == {"nodes": 3, "size": 128, "peer": "app"}
    assert lab.blocks["cache"].instances() == ["cache-1", "cache-2", "cache-3"]
    with pytest.raises(LabConfigError) as info:
        load_lab(memo_lab, [_override("cache.size=0"), _override("cache.peer=nope"), _override("cache.colour=red")])
    assert [str(p) for p in info.value.problems] == [
        "--set cache.colour=red cache.colour: unknown key 'colour' (known keys: kind, nodes, peer, size)",
        "--set cache.size=0 cache.size: expected an integer >= 1, got 0",
    ]
    with pytest.raises(LabConfigError) as info:
        load_lab(memo_lab, [_override("cache.peer=nope")])
    assert [str(p) for p in info.value.problems] == [
        "--set cache.peer=nope cache.peer: expected the name of an app block (app), got 'nope'"]


def test_a_registered_kind_renders_from_its_own_templates(memo_lab: str) -> None:
    lab = load_lab(memo_lab)
    files = render_files(lab, {"app": "labctl/app:local", "memo": "memo:test"})
    services = yaml.safe_load(files["compose.yaml"])["services"]
    assert sorted(services) == ["app-1", "app-2", "cache-1", "cache-2", "cache-3"]
    assert services["cache-2"]["image"] == "memo:test"
    assert services["cache-2"]["labels"]["io.labctl.kind"] == "memo"
    assert files["cache/memo.conf"] == "# memo cache for memo-lab\npeers cache-1 cache-2 cache-3\nsize 128\n"


def test_a_registered_kind_offers_its_fault_targets(memo_lab: str) -> None:
    lab = load_lab(memo_lab)
    states = [ServiceState(name, block, kind, f"labctl-memo-lab-{name}", "running", "healthy", {}, "Up")
              for name, block, kind in [("app-1", "app", "app"), ("app-2", "app", "app"), ("cache-1", "cache", "memo"),
                                        ("cache-2", "cache", "memo"), ("cache-3", "cache", "memo")]]
    assert "cache.leader" in targets.valid_targets(states)
    assert [s.name for s in targets.resolve(lab, "cache.leader", states)] == ["cache-2"]
    assert [s.name for s in targets.resolve(lab, "cache.3", states)] == ["cache-3"]


def _override(text: str) -> Any:
    from labctl.model.overrides import parse_overrides

    return parse_overrides([text])[0]
