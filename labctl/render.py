"""Rendering a lab into a Compose project folder with Jinja2 templates."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from labctl import kinds, paths
from labctl.durations import duration_ms
from labctl.errors import LabctlError
from labctl.kinds import dns
from labctl.model.lab import Lab

STATE_FILE = "labctl-lab.json"


@dataclass(frozen=True)
class RenderedLab:
    """Where a lab was rendered and which files were written."""

    folder: Path
    compose_file: Path
    files: tuple[Path, ...]
    changed: tuple[str, ...]

    def changed_blocks(self) -> set[str]:
        """Blocks whose config files (not compose.yaml) differ from the previous render."""
        return {relative.split("/")[0] for relative in self.changed if "/" in relative}


def _environment() -> jinja2.Environment:
    # A kind kept outside labctl brings its own templates; labctl's own come first.
    folders = [str(paths.templates_dir())]
    folders += [str(k.template_dir) for k in kinds.REGISTRY.values() if k.template_dir is not None]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["duration_ms"] = duration_ms
    env.filters["seconds"] = _seconds
    return env


def _seconds(duration: str) -> str:
    """A schema duration ('500ms', '2s', '1m') as seconds for programs that take a number."""
    return f"{duration_ms(duration) / 1000:g}"


def render_files(lab: Lab, images: dict[str, str]) -> dict[str, str]:
    """Render every file of a lab in memory: relative path -> text."""
    env = _environment()
    context = {
        "lab": lab,
        "project": lab.project,
        "images": images,
        "lab_file": f"labs/{lab.lab_name}/lab.yaml",
        "addresses": dns.fixed_addresses(lab),
        "dns": dns,
        "placement": _placement(lab),
        "extra_networks": [net for block in lab.blocks.values() for net in block.spec.networks(lab, block)],
        "named_volumes": [(block, name) for block in lab.blocks.values() for name in block.spec.named_volumes(block)],
    }
    try:
        compose = env.get_template("compose.yaml.j2").render(context)
        files = {"compose.yaml": _drop_blank_lines(compose)}
        for block in lab.blocks.values():
            for template, name, extra in block.spec.config_templates(lab, block):
                files[f"{block.name}/{name}"] = env.get_template(template).render(context, block=block, **extra)
    except jinja2.TemplateError as exc:
        raise LabctlError(f"template error while rendering lab '{lab.name}': {exc}") from exc
    files[STATE_FILE] = _state_text(lab, images)
    return files


def _placement(lab: Lab) -> dict[str, tuple[str, list[str]]]:
    placed: dict[str, tuple[str, list[str]]] = {}
    for block in lab.blocks.values():
        placed.update(block.spec.placement(lab, block))
    return placed


def _drop_blank_lines(text: str) -> str:
    # Optional template pieces (limits, ports) leave empty lines behind; YAML needs none.
    return "\n".join(line for line in text.splitlines() if line.strip()) + "\n"


def _state_text(lab: Lab, images: dict[str, str]) -> str:
    state = {"lab": lab.name, "overrides": list(lab.overrides), "images": images}
    return json.dumps(state, indent=2) + "\n"


def render_lab(lab: Lab, images: dict[str, str], folder: Path | None = None) -> RenderedLab:
    """Render a lab into compose/<lab>/ (or `folder`), replacing the old files as one step."""
    target = folder or paths.compose_dir(lab.name)
    files = render_files(lab, images)
    changed = tuple(rel for rel, text in files.items() if _read(target / rel) != text)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{lab.name}-", dir=target.parent))
    try:
        for relative, text in files.items():
            _write_in_place(staging / relative, text)
        _swap_in(staging, target, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for block in lab.blocks.values():
        block.spec.prepare_folder(lab, block, target)
    written = tuple(target / relative for relative in files)
    return RenderedLab(target, target / "compose.yaml", written, changed)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _swap_in(staging: Path, target: Path, files: dict[str, str]) -> None:
    # Files are rewritten in place rather than replaced: a running container's bind mount
    # of a single file follows the inode, so a reload then sees the new config.
    for relative in files:
        _write_in_place(target / relative, (staging / relative).read_text(encoding="utf-8"))


def _write_in_place(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o644)


def rendered_state(name: str) -> dict[str, Any] | None:
    """What the last render of a lab recorded (its overrides and images), if it was rendered."""
    try:
        return dict(json.loads((paths.compose_dir(name) / STATE_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def running_lab(name: str) -> Lab:
    """A lab as it was brought up (see `labctl.running.attach`)."""
    from labctl.running import attach

    return attach(name).lab
