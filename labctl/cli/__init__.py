"""The labctl command line: parse arguments, call the core, print. Nothing else lives here."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from labctl import console, images, lifecycle
from labctl.doctor import run_checks
from labctl.errors import LabctlError
from labctl.experiments import chaos, compare, drill, scaling
from labctl.experiments.load import LoadOptions, parse_duration, parse_processes, run_load
from labctl.experiments.scaling import parse_scale
from labctl.model.lab import list_lab_names, load_lab
from labctl.model.overrides import parse_overrides

F = TypeVar("F", bound=Callable[..., Any])

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a lab parameter, e.g. --set app.replicas=5 --set lb.algorithm=least_conn.",
)
profile_option = click.option(
    "--profile", type=click.Choice(["upstream", "local"]), default=None,
    help="Image profile: official images (upstream) or images built here from Debian (local). "
    "Default: upstream when its images are present or can be pulled, else local.",
)


class LabctlGroup(click.Group):
    """Maps labctl's errors to exit codes in one place (1 expected, 2 usage, 130 Ctrl-C)."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = "--debug" in sys.argv[1:]
        try:
            return super().invoke(ctx)
        except LabctlError as exc:
            if debug:
                traceback.print_exc()
            console.error(str(exc))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            console.err.print("interrupted")
            ctx.exit(130)


@click.group(cls=LabctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="labctl")
def main(debug: bool) -> None:
    """labctl: stand up system-design labs on Docker, break them, and measure what happened."""


@main.command("list")
def list_cmd() -> None:
    """List the labs there are."""
    console.out.print(console.lab_table([load_lab(name) for name in list_lab_names()]))


@main.command()
@click.argument("lab")
@set_option
def show(lab: str, overrides: tuple[str, ...]) -> None:
    """Show a lab's building blocks, parameters and endpoints."""
    console.show_lab(load_lab(lab, parse_overrides(overrides)))


@main.command()
@click.argument("lab")
@set_option
def validate(lab: str, overrides: tuple[str, ...]) -> None:
    """Check a lab file and report every problem at once."""
    loaded = load_lab(lab, parse_overrides(overrides))
    console.out.print(f"{loaded.folder / 'lab.yaml'}: ok")


@main.command()
@click.argument("lab")
@set_option
@profile_option
def render(lab: str, overrides: tuple[str, ...], profile: str | None) -> None:
    """Write compose/<lab>/compose.yaml and its config files (runs with plain docker compose)."""
    rendered = lifecycle.render(load_lab(lab, parse_overrides(overrides)), profile)
    for path in rendered.files:
        console.out.print(str(path))


@main.command()
@click.argument("lab")
@set_option
@profile_option
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for every service to be healthy.")
def up(lab: str, overrides: tuple[str, ...], profile: str | None, timeout: float) -> None:
    """Start a lab and wait until every service is healthy; prints its endpoints."""
    loaded = load_lab(lab, parse_overrides(overrides))
    with console.progress(f"starting {lab}") as progress:
        result = lifecycle.up(loaded, profile=profile, timeout=timeout, progress=progress)  # type: ignore[arg-type]
    console.show_up(result)


@main.command()
@click.argument("lab", required=False)
@click.option("--all", "all_labs", is_flag=True, help="Remove every lab labctl started.")
def down(lab: str | None, all_labs: bool) -> None:
    """Remove a lab's containers, networks and volumes (only what labctl created)."""
    if bool(lab) == all_labs:
        raise click.UsageError("give a LAB or --all")
    console.show_down(lab, lifecycle.down(None if all_labs else lab))


@main.command()
@click.argument("lab", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(lab: str | None, as_json: bool) -> None:
    """Show the services of one lab, or of every lab that is up."""
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


@main.command()
@click.argument("lab")
@click.argument("service", required=False)
@click.option("--tail", default=100, show_default=True, help="Lines per service to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(lab: str, service: str | None, tail: int, follow: bool) -> None:
    """Show a lab's logs (all services, or one such as lb or app-2)."""
    argv = lifecycle.logs_command(lab, service, tail, follow)
    sys.exit(subprocess.call(argv))


@main.command()
@click.argument("lab")
def guide(lab: str) -> None:
    """Print a lab's guide: what to run, what to look at, what to expect."""
    loaded = load_lab(lab)
    console.show_guide(loaded.guide.read_text(encoding="utf-8"))


@main.group("images")
def images_group() -> None:
    """Build and list the images labs run on."""


@images_group.command("build")
@click.argument("roles", nargs=-1)
@click.option("--profile", type=click.Choice(["upstream", "local"]), default="local", show_default=True)
@click.option("--force", is_flag=True, help="Rebuild even when the inputs are unchanged.")
def images_build(roles: tuple[str, ...], profile: str, force: bool) -> None:
    """Build a profile's images (all roles, or the ROLES given); up-to-date ones are skipped."""
    with console.progress(f"images ({profile})") as progress:
        results = images.build_images(profile, roles or None, force=force, on_event=progress)  # type: ignore[arg-type]
    console.out.print(console.build_table(results))


@images_group.command("list")
def images_list() -> None:
    """Show every role's image in both profiles: present, up to date, size."""
    console.out.print(console.image_table(images.list_images()))


@main.command()
@click.option("--port", "ports", type=int, multiple=True, help="Also check this port (default: the labs' ports).")
def doctor(ports: tuple[int, ...]) -> None:
    """Check the Docker engine, Compose v2, free ports and which faults this kernel supports."""
    wanted = ports or tuple(sorted({p for name in list_lab_names() for _, p in load_lab(name).endpoints().values()}))
    with console.progress("checking") as progress:
        progress("probing the engine and the kernel")  # type: ignore[operator]
        checks = run_checks(wanted)
    console.out.print(console.doctor_table(checks))
    if any(c.status == "fail" for c in checks):
        sys.exit(1)


@main.command()
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


@main.command()
@click.argument("lab")
@click.argument("spec", metavar="BLOCK=N")
def scale(lab: str, spec: str) -> None:
    """Change a running lab's replicas (e.g. app=6); only those replicas start or stop and
    the load balancer reloads its config."""
    block, count = parse_scale(spec)
    with console.progress(f"scaling {lab}") as progress:
        result = scaling.scale(lab, block, count, progress)  # type: ignore[arg-type]
    console.out.print(f"{lab}: {block} {result.before} -> {result.after} replicas in {result.seconds:.1f}s")


@main.command()
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
    """Run one load per combination of parameters and compare req/s, p95 and errors."""
    options = LoadOptions(users=users, duration_s=parse_duration(duration), rate=rate,
                          processes=parse_processes(processes), path=url_path or "/")
    with console.progress(f"sweep on {lab}") as progress:
        run_dir, rows = scaling.sweep(lab, scaling.parse_grid(grid), options, progress)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    console.out.print(console.sweep_table(lab, rows))
    console.out.print(f"run folder: {run_dir} (sweep.json, sweep.csv, sweep.png)")


@main.command("chaos")
@click.argument("lab")
@click.argument("fault", type=click.Choice(chaos.FAULTS))
@click.argument("target")
@click.option("--percent", type=float, default=None, help="loss: share of packets dropped; fail: share of 500s.")
@click.option("--rate", "bandwidth", default=None, help="bandwidth: limit like 1mbit.")
@click.option("--ms", type=int, default=None, help="latency / slow: added delay in milliseconds.")
@click.option("--from", "peer", default=None, help="partition: cut TARGET off from this target only.")
@click.option("--duration", default=None, help="Keep the fault this long, then revert it (e.g. 20s).")
def chaos_cmd(lab: str, fault: str, target: str, percent: float | None, bandwidth: str | None, ms: int | None,
              peer: str | None, duration: str | None) -> None:
    """Inject a fault into TARGET (lb, app, app.2, random:app); `labctl heal LAB` reverts it."""
    params = {k: v for k, v in {"percent": percent, "rate": bandwidth, "ms": ms, "from": peer}.items() if v is not None}
    seconds = chaos.hold_seconds(duration)
    faults = chaos.inject(console.attached(lab), fault, target, params)
    for item in faults:
        console.out.print(f"{time.strftime('%H:%M:%S', time.localtime(item.at))} {fault} {item.target} "
                          f"{params or ''} (id {item.id}{', until healed' if item.revert and not seconds else ''})")
    if seconds and any(f.revert for f in faults):
        with console.progress(f"{fault} on {target}") as progress:
            chaos.hold_then_revert(lab, [f for f in faults if f.revert], seconds, progress)  # type: ignore[arg-type]
        console.out.print(f"reverted after {seconds:.0f}s")


@main.command()
@click.argument("lab")
def heal(lab: str) -> None:
    """Revert every fault still active in a lab, and remove every rule and qdisc labctl added."""
    faults = chaos.heal(lab)
    console.out.print(f"{lab}: reverted {len(faults)} fault(s)" + "".join(f"\n  {f.fault} {f.target}" for f in faults))


@main.command("drill")
@click.argument("lab")
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the lab's drills.")
@click.option("--json", "as_json", is_flag=True, help="Print drill.json instead of a table.")
def drill_cmd(lab: str, name: str | None, list_only: bool, as_json: bool) -> None:
    """Run a chaos drill: steady state, load with faults on a timeline, heal, verdict.
    Exit 0 only for a pass."""
    if list_only or not name:
        for drill_name in drill.drill_names(lab):
            console.out.print(f"{drill_name:20} {drill.load_drill(lab, drill_name).title}")
        return
    loaded = drill.load_drill(lab, name)
    with console.progress(f"drill {name}") as progress:
        result = drill.run_drill(console.attached(lab), loaded, progress)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(result.report, indent=2))
    else:
        console.show_drill(result.report, result.run_dir)
    if result.verdict != "pass":
        sys.exit(1)


@main.command("compare")
@click.option("--labs", "lab_list", required=True, metavar="LAB,LAB,...", help="Labs to compare, e.g. "
              "lb-nginx,lb-haproxy,lb-dns (each needs the drill).")
@click.option("--drill", "drill_name", required=True, help="The drill every lab runs, e.g. kill-backend.")
@click.option("--users", default=10, show_default=True, help="Users (connections) of the load, for every lab.")
@click.option("--rate", type=float, default=150.0, show_default=True, help="Requests per second, for every lab.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
def compare_cmd(lab_list: str, drill_name: str, users: int, rate: float, as_json: bool) -> None:
    """Run the same drill with the same load against several labs and compare req/s, p95,
    failed requests, detection and recovery (labs that were down are brought up, then down)."""
    labs = compare.parse_labs(lab_list)
    with console.progress(f"compare {drill_name}") as progress:
        result = compare.run_compare(labs, drill_name, compare.LoadShape(users, rate), progress)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    title = f"{drill_name}: {users} users, {rate:g} req/s on every lab"
    console.out.print(console.compare_table(result.rows, title))
    console.out.print(f"run folder: {result.run_dir} (compare.json, compare.png; each lab's drill in its own run)")


def _register_subgroups() -> None:
    from labctl.cli.db import db_group

    main.add_command(db_group)


_register_subgroups()
