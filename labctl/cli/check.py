"""`labctl check`: a lab guide's checkpoints, measured on the running lab."""

from __future__ import annotations

import json
import sys

import click


@click.command("check")
@click.argument("lab")
@click.argument("checkpoint", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the lab's checkpoints and their questions.")
@click.option("--json", "as_json", is_flag=True, help="Print check.json instead of tables.")
@click.option("--lang", type=click.Choice(["en", "ko"]), default=None,
              help="The questions' language (default: Korean when the locale is, else English).")
def check_cmd(lab: str, checkpoint: str | None, list_only: bool, as_json: bool, lang: str | None) -> None:
    """Run a lab's checkpoints (labs/LAB/checks.yaml) against the running lab: each answers a
    question of the guide with a load, a drill or a sweep, and prints the measured figures, the
    expected range and pass or fail, with the run folder. All of them, or only CHECKPOINT.
    Exit 0 only when every checkpoint run passed."""
    from labctl import console
    from labctl.experiments import check
    from labctl.guides import locale_language

    language = lang or locale_language()
    if list_only:
        for found in check.select(lab, checkpoint):
            console.out.print(f"{found.id}: {found.question_in(language)}")
        return
    with console.progress(f"check {lab}") as progress:
        report = check.run_checks(lab, checkpoint, progress)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        console.show_check(report.to_json(), language)
    if not report.passed:
        sys.exit(1)


COMMANDS: list[click.Command] = [check_cmd]
