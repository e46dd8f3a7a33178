"""Terminal output for the CLI: rich tables, progress and error text. The core never prints."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labctl.model.instance import lab_ref, split_instance

# Types only: `labctl list` and `--help` must not import Docker, Jinja or the MySQL connector.
if TYPE_CHECKING:
    from labctl.copies import InstanceRow
    from labctl.doctor import Check
    from labctl.images import BuildResult, ImageInfo
    from labctl.lifecycle import DownResult, LabStatus, UpResult
    from labctl.model.lab import Lab, LabEntry
    from labctl.running import RunningLab

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

_HEALTH_STYLE = {"healthy": "green", "starting": "yellow", "failed": "red"}



def attached(lab: str) -> RunningLab:
    """Attach to a running lab for a command; says so in one line when lab.yaml changed since `up`."""
    from labctl.running import attach

    running = attach(lab)
    notice = running.notice()
    if notice:
        err.print(notice, style="yellow")
    return running

@contextmanager
def progress(title: str) -> Iterator[object]:
    """A live status line on stderr while long work runs; yields a callback for updates."""
    if not err.is_terminal:
        yield _throttled_printer()
        return
    with err.status(title) as status:
        yield lambda message: status.update(f"{title}: {message}")


def _throttled_printer(every: float = 5.0) -> Callable[[str], None]:
    # Without a terminal there is no status line to update: print at most one line per `every` seconds.
    last = [0.0]

    def emit(message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            err.print(f"  {message}")

    return emit


def lab_table(labs: list[LabEntry]) -> Table:
    """`labctl list`: one row per lab (a lab file that cannot be read says why instead)."""
    table = Table(title="Labs", title_justify="left")
    for column in ("lab", "title", "blocks", "notes section"):
        table.add_column(column)
    for lab in labs:
        if lab.problem:
            table.add_row(lab.name, f"[red]cannot be read: {escape(lab.problem)}[/red]", "", "")
        else:
            table.add_row(lab.name, lab.title, lab.blocks, lab.notes)
    return table


def show_lab(lab: Lab) -> None:
    """`labctl show`: what a lab is made of, with every parameter after defaults."""
    out.print(f"[bold]{lab.name}[/bold]: {lab.title}")
    out.print(lab.summary)
    table = Table(show_header=True)
    for column in ("block", "kind", "services", "parameters"):
        table.add_column(column)
    for block in lab.blocks.values():
        params = ", ".join(f"{k}={v}" for k, v in block.params.items() if k != "health")
        table.add_row(block.name, block.kind, ", ".join(block.spec.services(block)), params)
    out.print(table)
    for name, url in lab.endpoint_urls().items():
        out.print(f"endpoint {name}: {url}")
    out.print(f"guide: labctl guide {lab.name}  ({lab.guide})")


def show_up(result: UpResult) -> None:
    """What `up` prints once the lab is healthy: where to look next."""
    lab = result.lab
    out.print(f"[green]lab {lab.name} is up[/green] in {result.seconds:.1f}s ({result.profile} images)")
    if lab.copy:
        out.print(f"  copy {lab.copy} of {lab.lab_name}: every host port is the lab's own + {lab.port_offset}")
    for name, url in result.endpoints.items():
        out.print(f"  {name:8} {url}")
    out.print(f"  compose  {result.rendered.compose_file}")
    web = next((url for name, url in result.endpoints.items() if name == "http"), "")
    # A lab without a published endpoint (lb-dns) is loaded from inside: there is nothing to curl.
    named = all(b.spec.names_backends for b in lab.blocks.values())
    look = f"curl -si {web} | grep X-Served-By; " if web and named else ""
    ref = lab_ref(lab.name)
    if not web:
        look = f"labctl load {ref} --duration 10s; "
    extra = "".join(f" {command};" for b in lab.blocks.values() for command in b.spec.next_commands(lab, b))
    out.print(f"next: {look}labctl status {ref};{extra} labctl guide {lab.lab_name}; labctl down {ref}")


def status_table(status: LabStatus) -> Table:
    """`labctl status`: one row per service."""
    lab_name, copy = split_instance(status.lab)
    copied = f", copy {copy} of {lab_name}, ports + {status.port_offset}" if copy else ""
    table = Table(title=f"{status.lab} ({status.to_json()['state']}{copied})", title_justify="left")
    for column in ("service", "block", "kind", "state", "health", "container"):
        table.add_column(column)
    for s in status.services:
        style = _HEALTH_STYLE.get(s.outcome, "")
        table.add_row(s.name, s.block, s.kind, s.state, f"[{style}]{s.health}[/{style}]", s.container)
    return table


def instances_table(rows: list[InstanceRow]) -> Table:
    """`labctl status --all`: one row per lab and copy, with its owner and ports."""
    table = Table(title=f"{len(rows)} lab(s) and copies with containers", title_justify="left")
    for column in ("instance", "lab", "owner", "state", "ports"):
        table.add_column(column)
    for row in rows:
        ports = " ".join(f"{name}={url.rsplit(':', 1)[1].split('/')[0]}" for name, url in row.endpoints.items())
        table.add_row(row.instance, row.lab, row.owner or "-", row.state, ports)
    return table


def show_down(lab: str | None, result: DownResult) -> None:
    """What `down` removed and what it left alone."""
    what = f"lab {lab}" if lab else "all labs"
    removed = len(result.containers) + len(result.networks) + len(result.volumes)
    if removed == 0 and not result.kept:
        out.print(f"{what}: nothing to remove")
        return
    out.print(f"{what}: removed {len(result.containers)} containers, {len(result.networks)} networks, "
              f"{len(result.volumes)} volumes")
    for line in result.kept:
        err.print(f"[yellow]left in place:[/yellow] {line}")


def show_guide(text: str) -> None:
    """A lab guide, rendered from Markdown for the terminal."""
    from labctl.guide_markdown import GuideMarkdown

    # `out` soft-wraps (long lines of plain output stay whole for copying), but rich's Markdown then
    # crops every list item and quote at the right edge: a guide is laid out to the width instead.
    out.print(GuideMarkdown(text), soft_wrap=False)


def error(message: str) -> None:
    """An expected failure, in red on stderr."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def is_interactive() -> bool:
    return sys.stdout.isatty()


def build_table(results: list[BuildResult]) -> Table:
    """`images build`: what was built, pulled or skipped."""
    table = Table(title="Images", title_justify="left")
    for column in ("role", "image", "action", "seconds"):
        table.add_column(column)
    for r in results:
        table.add_row(r.role, r.ref, r.action, f"{r.seconds:.1f}")
    return table


def image_table(infos: list[ImageInfo]) -> Table:
    """`images list`: both profiles, present or not."""
    # Fits 80 columns with every image name whole: short headings, the day it was built.
    table = Table(title="Images", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for column in ("profile", "role", "image", "here", "fresh", "MB", "built"):
        table.add_column(column, no_wrap=True, justify="right" if column == "MB" else "left")
    for i in infos:
        present = "[green]yes[/green]" if i.present else "[dim]no[/dim]"
        fresh = ("yes" if i.up_to_date else "[yellow]stale[/yellow]") if i.present else ""
        size = f"{i.size_mb:.0f}" if i.present else ""
        table.add_row(i.profile, i.role, i.ref, present, fresh, size, i.created[:10])
    return table


_CHECK_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "unsupported": "magenta"}


def doctor_table(checks: list[Check]) -> Table:
    """`doctor`: one row per check."""
    table = Table(title="labctl doctor", title_justify="left")
    for column in ("check", "status", "detail"):
        table.add_column(column)
    for c in checks:
        style = _CHECK_STYLE.get(c.status, "")
        table.add_row(c.name, f"[{style}]{c.status}[/{style}]", escape(c.detail))
    return table


def show_load(summary: dict[str, Any], run_dir: Path) -> None:
    """The end-of-run table of `labctl load`, and a loud warning when the generator was the limit."""
    latency = summary["latency_ms"]
    # The in-lab client runs in a container: its CPU is not a child of labctl's, so not shown.
    inlab = summary.get("generator") == "in-lab client"
    where = "from the in-lab client, " if inlab else ""
    table = Table(title=f"load on {summary['lab']} ({where}{summary['model']} model)", title_justify="left")
    columns = ("requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
    for column in (*columns, *(() if inlab else ("load-gen CPU",))):
        table.add_column(column, justify="right")
    cpu = () if inlab else (f"{summary['load_gen_cpu_per_process']:.0%} per process",)
    table.add_row(str(summary["requests"]), str(summary["failures"]), f"{summary['rps']:.0f}",
                  *(f"{latency[k]:.1f}" for k in ("p50", "p95", "p99", "max")), *cpu)
    out.print(table)
    out.print(answered_table(summary))
    show_errors(summary.get("errors", []), summary["failures"])
    for extra in summary.get("tables", []):
        out.print(kind_table(extra))
    if "db" in summary:
        show_writes(summary["db"], "RTO: no db node was killed, stopped or paused (labctl chaos) during the load")
    if "link" in summary:
        out.print(link_line(summary["link"]))
    if summary["load_gen_bound"]:
        err.print("[bold red]LOAD GENERATOR BOUND:[/bold red] Locust used "
                  f"{summary['load_gen_cpu_per_process']:.0%} of a core per process; the numbers show the "
                  "generator's limit, not the lab's. Use --processes auto or --rate.")
    extra = "samples-inlab.csv, client.log" if inlab else "locust-report.html"
    out.print(f"run folder: {run_dir} (summary.json, timeline.csv, timeline.png, {extra})")


def link_line(link: dict[str, Any]) -> str:
    """How a lab's WAN link was made during a run, and what it added."""
    rate = f"{link['rate_mbit']:g} Mbit/s" if link["rate_mbit"] else "no rate limit"
    return (f"WAN link ({link['block']}): {link['rtt_ms']} ms round trip (jitter {link['jitter_ms']} ms, {rate}) "
            f"between site A and site B ({', '.join(link['site_b'])}), made by a {link['method']} (TCP only)")


def kind_table(data: dict[str, Any]) -> Table:
    """A table a block kind added to a report: `title`, `columns` and `rows` (lists of text)."""
    table = Table(title=data["title"], title_justify="left")
    for column in data["columns"]:
        table.add_column(column)
    for row in data["rows"]:
        table.add_row(*(escape(str(cell)) for cell in row))
    return table


# Answers no backend served, each a row of its own beside the backends' (labctl.experiments.timeline).
_NOT_A_BACKEND = {"lb cache": "lb's cache (X-Cache-Status HIT)", "lb itself": "lb itself (no X-Served-By)",
                  "no answer": "no answer (refused, reset, timeout)", "backend error": "failed at a backend"}


def answered_table(summary: dict[str, Any]) -> Table:
    """Who answered a load's requests: each backend (X-Served-By), then what answered in a backend's
    place (the lb's cache, the lb itself: 429, 403, static files) and what got no answer."""
    table = Table(title="requests per backend (X-Served-By)", title_justify="left")
    for column in ("answered by", "requests", "share of requests"):
        table.add_column(column, justify="left" if column == "answered by" else "right")
    total = max(summary["requests"], 1)
    for backend, count in summary["backends"].items():
        table.add_row(backend, f"{count:,}", f"{count / total:.1%}")
    for what, count in summary.get("not_from_a_backend", {}).items():
        table.add_row(f"[dim]{escape(_NOT_A_BACKEND.get(what, what))}[/dim]", f"{count:,}", f"{count / total:.1%}")
    return table


def sweep_table(lab: str, rows: list[dict[str, Any]]) -> Table:
    """`labctl sweep`: one row per combination."""
    table = Table(title=f"sweep on {lab}", title_justify="left")
    params = list(rows[0]["params"]) if rows else []
    writes = any("write_p50_ms" in row for row in rows)
    write_columns = ("write p50 ms", "write p99 ms") if writes else ()
    for column in (*params, "req/s", "p50 ms", "p95 ms", *write_columns, "failures", "share per backend", "note"):
        table.add_column(column)
    for row in rows:
        shares = " ".join(f"{b}:{v:.0%}" for b, v in row["backend_share"].items())
        note = "[red]load generator bound[/red]" if row["load_gen_bound"] else ""
        write_cells = (_ms(row.get("write_p50_ms")), _ms(row.get("write_p99_ms"))) if writes else ()
        table.add_row(*row["params"].values(), f"{row['rps']:.0f}", f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}",
                      *write_cells, str(row["failures"]), shares, note)
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


_VERDICT_STYLE = {"pass": "green", "fail": "red", "aborted": "yellow", "deviated": "magenta"}


def show_drill(report: dict[str, Any], run_dir: Path) -> None:
    """The verdict, the faults and each expectation of a drill."""
    style = _VERDICT_STYLE.get(report["verdict"], "")
    out.print(f"drill {report['drill']} on {report['lab']}: [{style}]{report['verdict'].upper()}[/{style}]")
    if report["verdict"] == "aborted":
        before = report["steady_state_before"]
        if "error" in before:  # the lab never became healthy, so nothing was measured
            out.print(f"steady state did not hold before the fault: {before['error']}")
        else:
            out.print(f"steady state did not hold before the fault: error rate {before['error_rate']}, "
                      f"p95 {before['p95_ms']} ms (bound {before['bound']})")
    from labctl.experiments.drill_report import figures

    for name, value, _ in figures(report):
        out.print(f"{name}: {value}")
    for fault in report["faults"]:
        out.print(f"  t={fault['at_s']}s {fault['fault']} {fault['target']} (reverted at {fault['reverted_at_s']}s)")
    if "writes" in report:
        show_writes(report)
    table = Table(title="expectations", title_justify="left")
    for column in ("expectation", "expected", "observed", "ok"):
        table.add_column(column)
    for e in report["expectations"]:
        ok = "[green]yes[/green]" if e["ok"] else "[red]NO[/red]"
        table.add_row(e["name"], str(e["expected"]), str(e["observed"]), ok)
    out.print(table)
    show_errors(report.get("errors", []), report["failures"])
    out.print(f"report: {run_dir / 'report.md'} (drill.json, drill.png)")


def show_writes(result: dict[str, Any], no_fault: str = "RTO: no fault time given") -> None:
    """A db run's writes checked against the primary: lost, recovered, RPO and RTO."""
    from labctl.experiments.ledger import describe

    if not result.get("checked", True):
        err.print(f"writes not checked: {result['reason']}")
        return
    for line in describe(result, no_fault):
        style = "bold red" if line.startswith("RPO:") and result["rpo"]["writes"] else ""
        out.print(f"[{style}]{line}[/{style}]" if style else line)
    shown = result["ids"]["lost"][:5]
    if shown:
        more = result["writes"]["lost"] - len(shown)
        out.print(f"  lost ids: {', '.join(shown)}" + (f" and {more} more" if more > 0 else ""))


def show_errors(errors: list[dict[str, Any]], failures: int) -> None:
    """The most frequent reasons requests failed, as the load generator recorded them; says so when
    they do not add up to the `failures` counted from the samples."""
    for e in errors:
        out.print(f"  failed {e['count']}x: {e['request']}: {escape(e['error'])}")
    named = sum(e["count"] for e in errors)
    if errors and named != failures:
        out.print(f"  (reasons recorded for {named:,} of the {failures:,} failed requests: a load generator "
                  "stopped before it wrote them all)")


def _too_wide(table: Table, width: int | None) -> bool:
    limit = width or out.width
    return table.__rich_measure__(out, out.options.update_width(limit)).maximum > limit


def _compare_caption(rows: list[dict[str, Any]]) -> str | None:
    inlab = [row["lab"] for row in rows if row.get("generator", "locust") != "locust"]
    closed = [row["lab"] for row in rows if row.get("load_model") == "closed"]
    lines = [*([f"load from an in-lab client: {', '.join(inlab)}"] if inlab else []),
             *([f"the lab's own user, closed model (no rate): {', '.join(closed)}"] if closed else [])]
    return "\n".join(lines) or None


def compare_table(rows: list[dict[str, Any]], title: str, width: int | None = None) -> Table:
    """`labctl compare`: one row per lab, the same drill and the same load, fitted to `width`
    (the terminal's by default)."""
    from labctl.experiments.compare import cell, columns_for

    columns = columns_for(rows)
    table = Table(title=title, title_justify="left", caption_justify="left", caption=_compare_caption(rows))
    values = [[cell(row, key) for key in columns] for row in rows]
    for index, heading in enumerate(columns.values()):
        # Headings may wrap between words on a narrow terminal; lab names and figures must not be cut.
        widest = max([len(word) for word in heading.split()] + [len(v[index]) for v in values])
        table.add_column(heading, justify="left" if heading in ("lab", "drill", "verdict") else "right",
                         min_width=widest)
    if _too_wide(table, width):
        # rich would cut the last columns rather than wrap every heading: wrap them all.
        for column in table.columns:
            column.max_width = column.min_width
    if _too_wide(table, width):
        # Still too wide: drop the vertical rules, as `images list` does.
        table.box, table.show_edge, table.padding = box.SIMPLE_HEAD, False, (0, 1, 0, 0)
    verdict = list(columns).index("verdict")
    for row, cells in zip(rows, values, strict=True):
        style = _VERDICT_STYLE.get(row["verdict"], "")
        cells[verdict] = f"[{style}]{cells[verdict]}[/{style}]"
        table.add_row(*cells)
    return table


def show_check(report: dict[str, Any], language: str = "en") -> None:
    """`labctl check`: per checkpoint its question (in `language` when the file has it), each
    expectation with the figures measured, pass or fail, and the folders of the runs behind them."""
    for checkpoint in report["checkpoints"]:
        verdict = "[green]PASS[/green]" if checkpoint["passed"] else "[red]FAIL[/red]"
        question = checkpoint.get("question_ko") if language == "ko" else None
        out.print(f"{verdict} {checkpoint['id']}: {escape(question or checkpoint['question'])}")
        machine = checkpoint["machine"]
        out.print(f"  [dim]load average {machine['load_average_1m']:g} on {machine['cores']} cores[/dim]")
        table = Table(box=box.SIMPLE, show_edge=False)
        for column in ("expected", "measured", "ok"):
            table.add_column(column)
        for row in checkpoint["expectations"]:
            table.add_row(escape(row["expected"]), escape(_measured_text(row)),
                          "[green]yes[/green]" if row["passed"] else "[red]NO[/red]")
        out.print(table)
        for name, run in checkpoint["runs"].items():
            out.print(f"  {name} ({run['measurement']}): {run['run_dir']}")
            if run.get("note"):
                out.print(f"    [yellow]{escape(run['note'])}[/yellow]")
    passed = sum(1 for c in report["checkpoints"] if c["passed"])
    out.print(f"{passed} of {len(report['checkpoints'])} checkpoints passed; run folder: {report['run_dir']} "
              "(check.json)")


def _measured_text(row: dict[str, Any]) -> str:
    shown_figures = ", ".join(f"{name} = {'not measured' if v is None else f'{v:g}'}"
                              for name, v in row["figures"].items())
    return shown_figures if row.get("value") is None or len(row["figures"]) == 1 else \
        f"{shown_figures} (ratio {row['value']:g})"
