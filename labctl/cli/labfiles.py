"""Commands that read lab files and need no Docker: list, show, validate, render, guide."""

from __future__ import annotations

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
def guide(lab: str) -> None:
    """Print a lab's guide: what to run, what to look at, what to expect."""
    from labctl import console
    from labctl.model.lab import load_lab

    loaded = load_lab(lab)
    console.show_guide(loaded.guide.read_text(encoding="utf-8"))


COMMANDS: list[click.Command] = [list_cmd, show, validate, render, guide]
