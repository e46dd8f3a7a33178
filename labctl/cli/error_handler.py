"""The one place that turns what a command raised into a message and an exit code: labctl's own
errors (their exit code, 1 or 2), anything unexpected (one line, exit 1) and Ctrl-C (130)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager

import click

from labctl.errors import LabctlError

UNEXPECTED_EXIT = 1
INTERRUPTED_EXIT = 130


@contextmanager
def mapped_errors(ctx: click.Context, debug: bool) -> Iterator[None]:
    """Run a command; map what it raises to a message on stderr and `ctx.exit(code)`."""
    try:
        yield
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise  # click's own: usage errors (2), --help, --version and explicit exits
    except LabctlError as exc:
        _report(str(exc), debug)
        ctx.exit(exc.exit_code)
    except KeyboardInterrupt:
        from labctl import console

        console.err.print("interrupted")
        ctx.exit(INTERRUPTED_EXIT)
    except Exception as exc:
        _report(unexpected_message(exc, _command_path(exc.__traceback__, ctx)), debug)
        ctx.exit(UNEXPECTED_EXIT)


def unexpected_message(exc: BaseException, command: str) -> str:
    """One line: which command failed, with what, and how to see the traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    what = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    words = command.split()
    rerun = " ".join([words[0], "--debug", *words[1:], "..."]) if words else "labctl --debug ..."
    return f"{command} failed unexpectedly: {what} (`{rerun}` shows the traceback)"


def _report(message: str, debug: bool) -> None:
    from labctl import console

    if debug:
        import traceback

        traceback.print_exc()
    console.error(message)


def _command_path(trace: types.TracebackType | None, ctx: click.Context) -> str:
    # The innermost click context on the way down names the command that ran ("labctl db status").
    path = ctx.command_path
    while trace is not None:
        found = trace.tb_frame.f_locals.get("ctx")
        if isinstance(found, click.Context):
            path = found.command_path
        trace = trace.tb_next
    return path
