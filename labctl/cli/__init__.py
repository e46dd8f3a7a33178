"""The labctl command line: parse arguments, call the core, print. Nothing else lives here.

Each command group is a module of this package that lists its commands in `COMMANDS`;
`main` registers them with `add_command`. Command modules import the core inside each
command, so that `labctl --help` and `labctl list` do not pay for Docker, Jinja or charts.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from labctl.cli import chaos, db, doctor, drill, images, labfiles, lifecycle, load
from labctl.errors import LabctlError


class LabctlGroup(click.Group):
    """Maps labctl's errors to exit codes in one place (1 expected, 2 usage, 130 Ctrl-C)."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = "--debug" in sys.argv[1:]
        try:
            return super().invoke(ctx)
        except LabctlError as exc:
            from labctl import console

            if debug:
                import traceback

                traceback.print_exc()
            console.error(str(exc))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            from labctl import console

            console.err.print("interrupted")
            ctx.exit(130)


@click.group(cls=LabctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="labctl")
def main(debug: bool) -> None:
    """labctl: stand up system-design labs on Docker, break them, and measure what happened."""


def _add_commands() -> None:
    for module in (labfiles, lifecycle, images, doctor, load, chaos, drill, db):
        for command in module.COMMANDS:
            main.add_command(command)


_add_commands()
