"""Commands that start, stop, inspect and resize a lab: up, down, status, logs, scale."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import click

from labctl.cli.options import as_option, profile_option, set_option


@click.command()
@as_option
@click.argument("lab")
@set_option
@profile_option
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for every service to be healthy.")
def up(lab: str, overrides: tuple[str, ...], profile: str | None, timeout: float) -> None:
    """Start a lab and wait until every service is healthy; prints its endpoints."""
    from labctl import console, lifecycle
    from labctl.model.lab import load_lab
    from labctl.model.overrides import parse_overrides

    loaded = load_lab(lab, parse_overrides(overrides))
    with console.progress(f"starting {lab}") as progress:
        result = lifecycle.up(loaded, profile=profile, timeout=timeout, progress=progress)  # type: ignore[arg-type]
    console.show_up(result)


@click.command()
@as_option
@click.argument("lab", required=False)
@click.option("--all", "all_labs", is_flag=True, help="Remove every lab labctl started.")
def down(lab: str | None, all_labs: bool) -> None:
    """Remove a lab's containers, networks and volumes (only what labctl created)."""
    if bool(lab) == all_labs:
        raise click.UsageError("give a LAB or --all")
    from labctl import console, lifecycle

    console.show_down(lab, lifecycle.down(None if all_labs else lab))


@click.command()
@as_option
@click.argument("lab", required=False)
@click.option("--all", "all_copies", is_flag=True, help="One line per lab and copy: its owner, state and ports.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(lab: str | None, all_copies: bool, as_json: bool) -> None:
    """Show the services of one lab, or of every lab that is up."""
    from labctl import console, lifecycle

    if all_copies:
        if lab:
            raise click.UsageError("give a LAB or --all")
        _show_every_instance(as_json)
        return
    statuses = lifecycle.status(lab)
    if as_json:
        data: Any = statuses[0].to_json() if lab else [s.to_json() for s in statuses]
        click.echo(json.dumps(data, indent=2))
        return
    if not statuses:
        console.out.print("no labs are up")
    for item in statuses:
        console.out.print(console.status_table(item))
        for name, url in item.endpoints.items():
            console.out.print(f"  {name:8} {url}")


def _show_every_instance(as_json: bool) -> None:
    from labctl import console, lifecycle

    rows = lifecycle.status_all()
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
    else:
        console.out.print(console.instances_table(rows))


@click.command()
@as_option
@click.argument("lab")
@click.argument("service", required=False)
@click.option("--tail", default=100, show_default=True, help="Lines per service to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(lab: str, service: str | None, tail: int, follow: bool) -> None:
    """Show a lab's logs (all services, or one such as lb or app-2)."""
    from labctl import lifecycle

    argv = lifecycle.logs_command(lab, service, tail, follow)
    sys.exit(subprocess.call(argv))


@click.command()
@as_option
@click.argument("lab")
@click.argument("spec", metavar="BLOCK=N")
def scale(lab: str, spec: str) -> None:
    """Change a running lab's replicas (e.g. app=6); only those replicas start or stop and
    the load balancer reloads its config."""
    from labctl import console
    from labctl.experiments import scaling

    block, count = scaling.parse_scale(spec)
    with console.progress(f"scaling {lab}") as progress:
        result = scaling.scale(lab, block, count, progress)  # type: ignore[arg-type]
    console.out.print(f"{lab}: {block} {result.before} -> {result.after} replicas in {result.seconds:.1f}s")


COMMANDS: list[click.Command] = [up, down, status, logs, scale]
