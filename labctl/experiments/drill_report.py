"""The drill report: report.md and a timeline chart with each fault, and each degraded stretch,
drawn as a span."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labctl.experiments.ledger import describe
from labctl.experiments.timeline import Sample, bucket, percentile


def write_report(run_dir: Path, report: dict[str, Any], samples: list[Sample], start: float) -> None:
    """report.md and drill.png in the drill's run folder."""
    _draw(run_dir / "drill.png", report, samples, start)
    (run_dir / "report.md").write_text(_markdown(report), encoding="utf-8")


def _draw(path: Path, report: dict[str, Any], samples: list[Sample], start: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = bucket(samples, start)
    x = [row.second for row in seconds]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(x, [len(r.latencies) - r.failures for r in seconds], label="ok req/s", color="tab:blue")
    top.plot(x, [r.failures for r in seconds], label="failed req/s", color="tab:red")
    bottom.plot(x, [percentile(sorted(r.latencies), 0.95) for r in seconds], label="p95 ms", color="tab:purple")
    end = x[-1] + 1 if x else 1
    for fault in report["faults"]:
        until = fault["reverted_at_s"] if fault["reverted_at_s"] is not None else end
        for axis in (top, bottom):
            axis.axvspan(fault["at_s"], max(until, fault["at_s"] + 0.2), color="orange", alpha=0.25)
        top.annotate(f"{fault['fault']} {fault['target']}", (fault["at_s"], 0), fontsize="small", rotation=90,
                     va="bottom")
    for index, (first, last) in enumerate((report.get("degraded") or {}).get("spans") or []):
        for axis in (top, bottom):
            axis.axvspan(first, last, color="tab:gray", alpha=0.2, hatch="//",
                         label="degraded" if index == 0 and axis is top else None)
    top.set_ylabel("requests / s")
    bottom.set_ylabel("p95 ms")
    bottom.set_xlabel("seconds since the load started")
    top.legend(loc="upper right", fontsize="small")
    top.set_title(chart_title(report))
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def chart_title(report: dict[str, Any]) -> str:
    """'lb-haproxy / kill-backend: PASS', or without the verdict when there is none yet."""
    verdict = str(report.get("verdict") or "").upper()
    return f"{report['lab']} / {report['drill']}" + (f": {verdict}" if verdict else "")


def figures(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """What a drill measured, as (name, value, what it means): the screen shows the first two,
    report.md all three, so every number a drill's description promises (latency, replica lag,
    the steady state) is in both, not only in drill.json."""
    rate = round(report["failures"] / max(1, report["requests"]), 4)
    rows = [("requests", f"{report['requests']}, failed {report['failures']} (error rate {rate})", "")]
    latency = report.get("latency_ms")
    if latency:
        rows.append(("latency", f"p50 {latency['p50']}, p95 {latency['p95']}, p99 {latency['p99']}, "
                     f"max {latency['max']} ms at {report['rps']} req/s", "over the whole load"))
    rows += [
        ("error window", f"{report['error_window_s']} s", "first to last failed request after the first fault"),
        ("degraded window", _degraded_value(report), _degraded_meaning(report)),
        ("detection", f"{report.get('detection_s', 0.0)} s", "first fault until the last request of the first "
         "burst of failed or slow-to-serve ones was sent: traffic stopped going to the broken backend"),
        ("recovery", f"{report['recovery_s']} s", "first fault until the error rate stayed under the "
         "steady-state bound"),
    ]
    return rows + _steady_rows(report) + _kind_rows(report)


def _degraded_value(report: dict[str, Any]) -> str:
    spans = (report.get("degraded") or {}).get("spans") or []
    where = ", ".join(f"{a}-{b} s" for a, b in spans)
    return f"{report.get('degraded_s', 0.0)} s" + (f" (at {where})" if where else "")


def _degraded_meaning(report: dict[str, Any]) -> str:
    degraded = report.get("degraded") or {}
    steady = degraded.get("steady_rps")
    rate = f" or fewer than half the steady {steady} answered requests/s" if steady is not None else ""
    return (f"seconds from the first fault on with p95 over the steady-state bound of "
            f"{degraded.get('max_p95_ms', '-')} ms{rate}; the last, partial second is not counted")


def _steady_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for when in ("before", "after"):
        state = report.get(f"steady_state_{when}")
        if state and "p95_ms" in state:
            bound = state["bound"]
            rows.append((f"steady state {when}", f"p95 {state['p95_ms']} ms, error rate {state['error_rate']}",
                         f"bound: p95 <= {bound['max_p95_ms']} ms, error rate <= {bound['max_error_rate']}"))
    return rows


def _kind_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    # Each kind shows its own part of drill.json (a db block its replication and failover).
    from labctl import kinds

    return [row for kind in kinds.REGISTRY.values() for row in kind.report_rows(report)]


def _markdown(report: dict[str, Any]) -> str:
    lines = [f"# Drill {report['drill']} on {report['lab']}: {str(report.get('verdict') or '-').upper()}", "",
             report["title"], ""]
    lines += [f"- {name}: {value}" + (f" ({meaning})" if meaning else "") for name, value, meaning in figures(report)]
    lines += ["", "## Faults", "", "| at s | fault | target | reverted at s |", "|---|---|---|---|"]
    lines += [f"| {f['at_s']} | {f['fault']} | {f['target']} | {f['reverted_at_s']} |" for f in report["faults"]]
    lines += ["", "## Expectations", "", "| expectation | expected | observed | ok |", "|---|---|---|---|"]
    lines += [f"| {e['name']} | {e['expected']} | {e['observed']} | {'yes' if e['ok'] else 'NO'} |"
              for e in report["expectations"]]
    if "writes" in report:
        lines += ["", "## Writes, checked against the final primary", ""]
        lines += [f"- {line}" for line in describe(report)]
        if report["ids"]["lost"]:
            lines.append(f"- lost ids (first {len(report['ids']['lost'])}): " + ", ".join(report["ids"]["lost"]))
    if report.get("errors"):
        lines += ["", "## Why requests failed", "", "| request | error | count |", "|---|---|---|"]
        lines += [f"| {e['request']} | {e['error']} | {e['count']} |" for e in report["errors"]]
    lines += ["", "![timeline](drill.png)", ""]
    return "\n".join(lines)
