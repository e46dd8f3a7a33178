"""Commands that read lab files and need no Docker: list, show, validate, render, export, guide."""

from __future__ import annotations

from pathlib import Path

import click

from labctl.cli.options import profile_option, set_option


@click.command("list")
def list_cmd() -> None:
    """List the labs there are."""
    from labctl import console
    from labctl.model.lab import lab_entries

    console.out.print(console.lab_table(lab_entries()))


@click.command()
@click.argument("lab")
@set_option
def show(lab: str, overrides: tuple[str, ...]) -> None:
    """Show a lab's building blocks, parameters and endpoints."""
    from labctl import console
    from labctl.model.lab import load_lab
    from labctl.model.overrides import parse_overrides

    console.show_lab(load_lab(lab, parse_overrides(overrides)))


@click.command()
@click.argument("lab")
@set_option
def validate(lab: str, overrides: tuple[str, ...]) -> None:
    """Check a lab file and report every problem at once."""
    from labctl import console
    from labctl.model.lab import load_lab
    from labctl.model.overrides import parse_overrides

    loaded = load_lab(lab, parse_overrides(overrides))
    console.out.print(f"{loaded.folder / 'lab.yaml'}: ok")


@click.command()
@click.argument("lab")
@set_option
@profile_option
def render(lab: str, overrides: tuple[str, ...], profile: str | None) -> None:
    """Write compose/<lab>/compose.yaml and its config files (runs with plain docker compose)."""
    from labctl import console, lifecycle
    from labctl.model.lab import load_lab
    from labctl.model.overrides import parse_overrides

    rendered = lifecycle.render(load_lab(lab, parse_overrides(overrides)), profile)
    for path in rendered.files:
        console.out.print(str(path))


@click.command()
@click.argument("lab")
@click.option("--to", "target", type=click.Choice(["kubernetes"]), required=True,
              help="What to export to (Kubernetes manifests: the only target so far).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the manifests (default: ./LAB-kubernetes).")
@click.option("--service-type", type=click.Choice(["NodePort", "LoadBalancer"]), default="NodePort",
              show_default=True, help="The Service type of each published port.")
@set_option
def export(lab: str, target: str, out: Path | None, service_type: str, overrides: tuple[str, ...]) -> None:
    """Write the lab as Kubernetes manifests: a workload and a headless Service per container,
    ConfigMaps for its config files, Secrets for its passwords, published ports as Services."""
    from labctl import console, images
    from labctl.export.kubernetes import export_kubernetes
    from labctl.lifecycle import required_roles
    from labctl.model.lab import load_lab
    from labctl.model.overrides import parse_overrides

    loaded = load_lab(lab, parse_overrides(overrides))
    refs = {role: images.image_ref(role, "local") for role in required_roles(loaded)}
    folder = out or Path(f"{lab}-kubernetes")
    written = export_kubernetes(loaded, refs, folder, service_type)
    console.out.print(f"{len(written)} manifests for {target} in {folder}: kubectl apply -f {folder}")


@click.command()
@click.argument("lab")
@click.option("--lang", type=click.Choice(["en", "ko"]), default=None,
              help="The guide's language (default: Korean when the locale is, else English).")
def guide(lab: str, lang: str | None) -> None:
    """Print a lab's guide: what to run, what to look at, what to expect."""
    from labctl import console
    from labctl.guides import pick_guide
    from labctl.model.lab import load_lab

    loaded = load_lab(lab)
    path, _language, note = pick_guide(lab, loaded.guides(), lang)
    console.show_guide(path.read_text(encoding="utf-8"))
    if note:
        console.err.print(note, soft_wrap=True, highlight=False)


COMMANDS: list[click.Command] = [list_cmd, show, validate, render, export, guide]
