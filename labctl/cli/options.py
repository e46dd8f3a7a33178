"""Options and argument types that several command modules share."""

from __future__ import annotations

import functools
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


def as_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--as NAME`: act on the copy NAME of LAB (see labctl.model.instance). The command gets
    the copy's instance name as its `lab`, so its body is the same for a lab and a copy."""

    @functools.wraps(command)
    def on_instance(*args: Any, copy: str | None, **kwargs: Any) -> Any:
        if copy is not None:
            from labctl.model.instance import instance_name

            if not kwargs.get("lab"):
                raise click.UsageError("--as NAME needs the LAB it is a copy of")
            kwargs["lab"] = instance_name(kwargs["lab"], copy)
        return command(*args, **kwargs)

    return click.option(
        "--as", "copy", metavar="NAME", default=None,
        help="Act on the copy NAME of the lab: its own project, folder, runs, passwords and ports "
        "(`up --as NAME` creates it).",
    )(on_instance)
