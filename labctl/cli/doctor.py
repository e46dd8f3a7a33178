"""`labctl doctor`: what this machine can run."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--port", "ports", type=int, multiple=True, help="Also check this port (default: the labs' ports).")
def doctor(ports: tuple[int, ...]) -> None:
    """Check the Docker engine, Compose v2, free ports and which faults this kernel supports."""
    from labctl import console
    from labctl.doctor import run_checks
    from labctl.model.lab import list_lab_names, load_lab

    wanted = ports or tuple(sorted({p for name in list_lab_names() for _, p in load_lab(name).endpoints().values()}))
    with console.progress("checking") as progress:
        progress("probing the engine and the kernel")  # type: ignore[operator]
        checks = run_checks(wanted)
    console.out.print(console.doctor_table(checks))
    if any(c.status == "fail" for c in checks):
        sys.exit(1)


COMMANDS: list[click.Command] = [doctor]
