"""Commands that put load on a lab: load, sweep."""

from __future__ import annotations

import json
from pathlib import Path

import click

from labctl.cli.options import as_option
from labctl.durations import parse_duration


@click.command()
@as_option
@click.argument("lab")
@click.option("--users", default=10, show_default=True, help="Concurrent Locust users.")
@click.option("--spawn-rate", type=float, default=None, help="Users started per second (default: all at once).")
@click.option("--duration", default="30s", show_default=True, help="How long to run, e.g. 60s or 2m.")
@click.option("--rate", type=float, default=None, help="Open model: this many requests per second, latency "
              "measured from when each was due (users then bound the requests in flight).")
@click.option("--processes", default="1", show_default=True, help="Locust processes, a number or 'auto'.")
@click.option("--locustfile", type=click.Path(path_type=Path), default=None, help="Your own locustfile.")
@click.option("--path", "url_path", default="/", show_default=True, help="Request path for the default user.")
@click.option("--endpoint", default="http", show_default=True, help="Which published endpoint to load.")
@click.option("--web", is_flag=True, help="Open Locust's web UI on 127.0.0.1:8089 instead of a headless run.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of a table.")
def load(lab: str, users: int, spawn_rate: float | None, duration: str, rate: float | None, processes: str,
         locustfile: Path | None, url_path: str, endpoint: str, web: bool, as_json: bool) -> None:
    """Drive Locust against a lab's published port and report spread, latency and errors."""
    from labctl import console
    from labctl.experiments.load import LoadOptions, parse_processes, run_load

    options = LoadOptions(users=users, spawn_rate=spawn_rate, duration_s=parse_duration(duration), rate=rate,
                          processes=parse_processes(processes), locustfile=locustfile, web=web,
                          endpoint=endpoint, path=url_path)
    if web:
        console.err.print("Locust web UI: http://127.0.0.1:8089 (Ctrl-C here to stop and write the report)")
    with console.progress(f"load on {lab}") as progress:
        result = run_load(lab, options, progress)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(result.summary, indent=2))
        return
    console.show_load(result.summary, result.run_dir)


@click.command()
@as_option
@click.argument("lab")
@click.option("--set", "grid", multiple=True, metavar="KEY=V1,V2", required=True,
              help="A parameter and the values to sweep, e.g. --set app.replicas=1,2,4 (repeat for a grid).")
@click.option("--duration", default="30s", show_default=True, help="Load per combination.")
@click.option("--users", default=20, show_default=True, help="Concurrent users (closed model).")
@click.option("--rate", type=float, default=None, help="Open model: requests per second instead.")
@click.option("--processes", default="1", show_default=True, help="Locust processes, a number or 'auto'.")
@click.option("--path", "url_path", default=None, help="Request path (default: the lab's locustfile or /).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def sweep(lab: str, grid: tuple[str, ...], duration: str, users: int, rate: float | None, processes: str,
          url_path: str | None, as_json: bool) -> None:
    """Run one load per combination of parameters and compare req/s, p95 and errors (and write
    p50/p99 on a database lab). A running lab keeps its other --set values for each combination
    and is put back as it was afterwards."""
    from labctl import console
    from labctl.experiments import scaling
    from labctl.experiments.load import LoadOptions, parse_processes

    options = LoadOptions(users=users, duration_s=parse_duration(duration), rate=rate,
                          processes=parse_processes(processes), path=url_path or "/")
    with console.progress(f"sweep on {lab}") as progress:
        result = scaling.sweep(lab, scaling.parse_grid(grid), options, progress)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(result.rows, indent=2))
        console.err.print(result.after)
        return
    console.out.print(console.sweep_table(lab, result.rows))
    console.out.print(f"run folder: {result.run_dir} (sweep.json, sweep.csv, sweep.png)")
    console.out.print(result.after)


COMMANDS: list[click.Command] = [load, sweep]
