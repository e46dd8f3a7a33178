"""A running lab, built once per command: the lab as it was rendered at `up` (from the
snapshot `up` writes, not from today's lab.yaml), its project, endpoints and images.

Commands that act on a running lab `attach` to it and pass the object down instead of a
name, so a drill resolves the lab once and `labctl db failover` acts on what is running
even after lab.yaml was edited.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl import paths
from labctl.errors import LabctlError
from labctl.model.instance import lab_ref, split_instance
from labctl.model.lab import Block, Lab
from labctl.runtime import inventory, local_runtime


@dataclass(frozen=True)
class RunningLab:
    """One lab as it runs. `states()` asks the engine each time; everything else was fixed at `up`."""

    lab: Lab
    images: dict[str, str]
    # lab.yaml differs from the one the running lab was rendered from.
    lab_file_changed: bool = False

    @property
    def name(self) -> str:
        return self.lab.name

    @property
    def project(self) -> str:
        return self.lab.project

    def states(self) -> list[inventory.ServiceState]:
        """Every container of the lab with its state and health, right now."""
        return local_runtime().containers(self.name)

    def require_up(self) -> list[inventory.ServiceState]:
        """The lab's containers; an error saying how to start it when it has none."""
        states = self.states()
        if not states:
            raise LabctlError(f"lab '{self.name}' is not up; start it with 'labctl up {lab_ref(self.name)}'")
        return states

    def endpoint(self, name: str) -> str:
        """The URL of one published endpoint."""
        urls = self.lab.endpoint_urls()
        if name not in urls:
            raise LabctlError(f"lab '{self.name}' publishes no endpoint '{name}' (endpoints: "
                              f"{', '.join(urls) or 'none'})")
        return urls[name]

    def resolve(self, target: str) -> list[inventory.ServiceState]:
        """The containers a fault target (`lb`, `app.2`, `db.primary`, `random:app`) names now."""
        from labctl.experiments import targets

        return targets.resolve(self.lab, target, self.states())

    def new_run_dir(self, kind: str) -> Path:
        """A fresh runs/<lab>/<run-id>/ folder."""
        from labctl.experiments.load import new_run_dir

        return new_run_dir(self.name, kind)

    def notice(self) -> str | None:
        """One line for commands to print when lab.yaml changed since `up`."""
        if not self.lab_file_changed:
            return None
        return (f"note: labs/{self.lab.lab_name}/lab.yaml changed since 'labctl up'; acting on the lab as it runs "
                f"('labctl up {lab_ref(self.name)}' applies the new file)")


def write_snapshot(lab: Lab, images: dict[str, str]) -> None:
    """Record the lab as rendered for `up` (or `scale`): what later commands attach to."""
    snapshot: dict[str, Any] = {
        "lab": lab.name, "title": lab.title, "summary": lab.summary, "folder": str(lab.folder),
        "notes": lab.notes, "bind": lab.bind, "overrides": list(lab.overrides), "images": images,
        "lab_file_sha256": _lab_file_hash(lab.folder),
        "blocks": [{"name": b.name, "kind": b.kind, "params": b.params} for b in lab.blocks.values()],
    }
    if lab.copy:
        snapshot.update(copy=lab.copy, port_offset=lab.port_offset)
    path = paths.snapshot_file(lab.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(snapshot, indent=2) + "\n", encoding="utf-8")


def attach(name: str) -> RunningLab:
    """The lab `name` as it was brought up. A lab rendered before snapshots existed is read
    from its lab file with the overrides it was rendered with."""
    snapshot = _read_snapshot(name)
    if snapshot is None:
        return _from_lab_file(name)
    lab = _lab_of(snapshot)
    changed = _lab_file_hash(lab.folder) != snapshot.get("lab_file_sha256")
    return RunningLab(lab, dict(snapshot.get("images", {})), changed)


def _read_snapshot(name: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(paths.snapshot_file(name).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _lab_of(snapshot: dict[str, Any]) -> Lab:
    blocks = {b["name"]: Block(b["name"], b["kind"], b["params"]) for b in snapshot["blocks"]}
    return Lab(name=snapshot["lab"], title=snapshot["title"], summary=snapshot["summary"],
               folder=Path(snapshot["folder"]), blocks=blocks, notes=snapshot["notes"],
               bind=snapshot["bind"], overrides=tuple(snapshot["overrides"]),
               copy=snapshot.get("copy", ""), port_offset=int(snapshot.get("port_offset", 0)))


def _from_lab_file(name: str) -> RunningLab:
    from labctl.model.lab import load_lab
    from labctl.model.overrides import parse_overrides
    from labctl.render import rendered_state

    lab_name, copy = split_instance(name)
    if copy:
        raise LabctlError(f"copy '{copy}' of lab '{lab_name}' is not up; start it with 'labctl up {lab_ref(name)}'")
    state = rendered_state(name) or {}
    lab = load_lab(name, parse_overrides(list(state.get("overrides", []))))
    return RunningLab(lab, dict(state.get("images", {})))


def _lab_file_hash(folder: Path) -> str | None:
    try:
        return hashlib.sha256((folder / "lab.yaml").read_bytes()).hexdigest()
    except OSError:
        return None
