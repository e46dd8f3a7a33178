"""Commands that run experiments with a verdict: drill, compare."""

from __future__ import annotations

import json
import sys

import click

from labctl.cli.options import as_option


@click.command("drill")
@as_option
@click.argument("lab")
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the lab's drills.")
@click.option("--json", "as_json", is_flag=True, help="Print drill.json instead of a table.")
def drill_cmd(lab: str, name: str | None, list_only: bool, as_json: bool) -> None:
    """Run a chaos drill: steady state, load with faults on a timeline, heal, verdict.
    Exit 0 only for a pass."""
    from labctl import console
    from labctl.experiments import drill

    if list_only or not name:
        names = drill.drill_names(lab)
        width = max((len(n) for n in names), default=0) + 1
        for drill_name in names:
            console.out.print(f"{drill_name:{width}} {drill.load_drill(lab, drill_name).title}")
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


@click.command("compare")
@click.option("--labs", "lab_list", required=True, metavar="LAB[:DRILL],...", help="Labs to compare, e.g. "
              "lb-nginx,lb-haproxy,lb-dns; LAB:DRILL gives that lab its own drill, e.g. "
              "consensus-etcd:kill-leader.")
@click.option("--drill", "drill_name", required=True, help="The drill every lab runs unless --labs names "
              "another, e.g. kill-backend.")
@click.option("--users", default=10, show_default=True, help="Users (connections) of the load, for every lab.")
@click.option("--rate", type=float, default=150.0, show_default=True, help="Requests per second, for every lab "
              "whose load is labctl's own user (a lab with a locustfile of its own keeps it, closed-model).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
def compare_cmd(lab_list: str, drill_name: str, users: int, rate: float, as_json: bool) -> None:
    """Run the same drill with the same load against several labs and compare req/s, p95,
    failed requests, detection and recovery; for labs that keep a write ledger, RTO, lost and
    refused writes, steady write latency and nodes (labs that were down are brought up, then down)."""
    from labctl import console
    from labctl.experiments import compare

    labs = compare.parse_labs(lab_list, drill_name)
    with console.progress(f"compare {drill_name}") as progress:
        result = compare.run_compare(labs, compare.LoadShape(users, rate), progress)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    generic = any(row.get("load_model") == "open" for row in result.rows)
    rated = f", {rate:g} req/s from labctl's own user" if generic else ""
    title = f"{result.drill}: {users} users on every lab{rated}"
    console.out.print(console.compare_table(result.rows, title))
    console.out.print(f"run folder: {result.run_dir} (compare.json, compare.png; each lab's drill in its own run)")


COMMANDS: list[click.Command] = [drill_cmd, compare_cmd]
