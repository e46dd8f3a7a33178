"""Options and argument types that several command modules share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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


class LazyChoice(click.Choice):  # type: ignore[type-arg]
    """A click.Choice whose choices come from the core only when they are needed (parsing or
    the command's own --help), so that registering the command imports nothing heavy."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._loaded: Sequence[str] | None = None
        self.case_sensitive = True

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        if self._loaded is None:
            self._loaded = tuple(self._load())
        return self._loaded

    @choices.setter
    def choices(self, value: Sequence[Any]) -> None:
        self._loaded = tuple(value)
