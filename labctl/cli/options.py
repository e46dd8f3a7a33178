"""Options that several command modules share."""

from __future__ import annotations

import click

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a lab parameter, e.g. --set app.replicas=5 --set lb.algorithm=least_conn.",
)
profile_option = click.option(
    "--profile", type=click.Choice(["upstream", "local"]), default=None,
    help="Image profile: official images (upstream) or images built here from Debian (local). "
    "Default: upstream when its images are present or can be pulled, else local.",
)
