"""The labctl command line: parse arguments, call the core, print. Nothing else lives here.

Each command group is a module of this package that lists its commands in `COMMANDS`;
`main` registers them with `add_command`. Command modules import the core inside each
command, so that `labctl --help` and `labctl list` do not pay for Docker, Jinja or charts.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from labctl.cli import chaos, check, dashboard, db, doctor, drill, images, labfiles, lifecycle, load
from labctl.cli.error_handler import mapped_errors


class LabctlGroup(click.Group):
    """Maps every error to a message and an exit code in one place (error_handler)."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug")) or "--debug" in sys.argv[1:]
        with mapped_errors(ctx, debug):
            return super().invoke(ctx)


@click.group(cls=LabctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="labctl")
def main(debug: bool) -> None:
    """labctl: stand up system-design labs on Docker, break them, and measure what happened."""


def _add_commands() -> None:
    for module in (labfiles, lifecycle, images, doctor, load, chaos, drill, check, db, dashboard):
        for command in module.COMMANDS:
            main.add_command(command)


_add_commands()
