"""`labctl load`: Locust in a subprocess against a lab's published port on 127.0.0.1,
and what it saw turned into summary.json, timeline.csv and a chart in the run folder."""

from __future__ import annotations

import csv
import json
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from labctl import lifecycle, paths
from labctl.errors import LabctlError, UsageError
from labctl.experiments.timeline import Sample, bucket, draw_chart, parse_samples, percentile, write_timeline
from labctl.model.instance import lab_ref
from labctl.model.lab import lab_folder
from labctl.runtime import inlab

LOADGEN = Path(__file__).resolve().parents[1] / "loadgen"
# A generator process above this share of one core is the bottleneck, not the lab.
BOUND_CPU_PER_PROCESS = 0.85
Progress = Callable[[str], None]


class LoadError(LabctlError):
    """The load run could not start or produced nothing usable."""


@dataclass(frozen=True)
class LoadOptions:
    """What `labctl load` was asked for."""

    users: int = 10
    spawn_rate: float | None = None
    duration_s: float = 30.0
    rate: float | None = None
    processes: int = 1
    locustfile: Path | None = None
    web: bool = False
    endpoint: str = "http"
    path: str = "/"


@dataclass(frozen=True)
class LoadResult:
    """A finished load run: its folder and its summary."""

    run_dir: Path
    summary: dict[str, Any]


def parse_processes(text: str) -> int:
    """'auto' (one per CPU) or a positive number of Locust processes."""
    if text == "auto":
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--processes expects a number >= 1 or 'auto', got {text!r}")
    return int(text)


def check_options(lab: str, options: LoadOptions) -> None:
    """Refuse a load that cannot run, before the lab is looked at or a run folder is made."""
    lab_folder(lab)
    wrong = [text for bad, text in (
        (options.users < 1, f"--users expects a number >= 1, got {options.users}"),
        (options.spawn_rate is not None and options.spawn_rate <= 0,
         f"--spawn-rate expects users per second > 0, got {options.spawn_rate}"),
        (options.rate is not None and options.rate <= 0, f"--rate expects requests per second > 0, got {options.rate}"),
        (not options.web and options.duration_s <= 0, f"--duration expects a time > 0, got {options.duration_s:g}s"),
        (not options.path.startswith("/"), f"--path expects a path that starts with /, got {options.path!r}"),
    ) if bad]
    if wrong:
        raise UsageError("; ".join(wrong))
    locust_files(lab, options)


def lab_state(lab: str) -> str:
    """up, starting, degraded, or down (no containers)."""
    return str(lifecycle.status(lab)[0].to_json()["state"])


def require_up(lab: str, state: str | None = None) -> None:
    """Refuse a lab that is not up (its `state`, when already known)."""
    state = state or lab_state(lab)
    if state != "up":
        ref = lab_ref(lab)
        raise LoadError(f"lab '{lab}' is {state}; start it with 'labctl up {ref}' (see 'labctl status {ref}')")


def endpoint_url(lab: str, endpoint: str) -> str:
    """The lab's published endpoint as a 127.0.0.1 URL; errors when the lab is not up."""
    [status] = lifecycle.status(lab)
    require_up(lab, str(status.to_json()["state"]))
    url = status.endpoints.get(endpoint)
    if url is None:
        known = ", ".join(status.endpoints) or "none"
        raise LoadError(f"lab '{lab}' publishes no endpoint '{endpoint}' (endpoints: {known})")
    # Load goes to the published port on loopback only, whatever address the lab binds.
    return re.sub(r"^(https?)://[^:/]+", r"\1://127.0.0.1", url).removesuffix("/stats")


def new_run_dir(lab: str, kind: str) -> Path:
    """A fresh runs/<lab>/<run-id>/ folder."""
    run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{kind}"
    folder = paths.runs_dir(lab) / run_id
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = paths.runs_dir(lab) / f"{run_id}-{suffix}"
    folder.mkdir(parents=True)
    return folder


def discard_if_empty(folder: Path) -> None:
    """Remove a run folder nothing was written to, and the runs folders that only held it."""
    for path in (folder, folder.parent, folder.parent.parent):
        try:
            path.rmdir()
        except OSError:
            return


def locust_files(lab: str, options: LoadOptions) -> list[Path]:
    """The plugin first, then the user's locustfile, the lab's own, or labctl's default."""
    plugin = LOADGEN / "plugin.py"
    if options.rate is not None:
        if options.locustfile is not None:
            raise UsageError("--rate uses labctl's own open-model user; it cannot be combined with --locustfile")
        return [plugin, LOADGEN / "open_model.py"]
    if options.locustfile is not None:
        if not options.locustfile.is_file():
            raise UsageError(f"--locustfile {options.locustfile}: no such file")
        return [plugin, options.locustfile]
    own = lab_folder(lab) / "locustfile.py"
    return [plugin, own if own.is_file() else LOADGEN / "closed_model.py"]


def locust_argv(host: str, files: list[Path], options: LoadOptions, run_dir: Path) -> list[str]:
    """The Locust command line for one run."""
    users = options.users
    argv = [sys.executable, "-m", "locust", "-f", ",".join(str(f) for f in files), "--host", host,
            "-u", str(users), "-r", str(options.spawn_rate or users), "--exit-code-on-error", "0",
            "--csv", str(run_dir / "locust"), "--html", str(run_dir / "locust-report.html"),
            "--loglevel", "WARNING"]
    if options.web:
        argv += ["--web-host", "127.0.0.1", "--web-port", "8089"]
    else:
        argv += ["--headless", "--only-summary", "-t", f"{max(1, round(options.duration_s))}s", "--stop-timeout", "2"]
    if options.processes > 1:
        argv += ["--processes", str(options.processes)]
    return argv


def _environment(run_dir: Path, options: LoadOptions) -> dict[str, str]:
    per_process = -(-options.users // options.processes)
    return {
        **os.environ,
        "LABCTL_SAMPLES_DIR": str(run_dir),
        # Drills run several loads into folders of the same name (before/main/after): the
        # ids a DB load writes must not collide with an earlier run's rows.
        "LABCTL_RUN_ID": f"{run_dir.parent.name[:15]}{run_dir.name[:4]}{uuid.uuid4().hex[:6]}",
        "LABCTL_PATH": options.path,
        "LABCTL_RATE": str(options.rate or 0),
        "LABCTL_PROCESSES": str(options.processes),
        "LABCTL_USERS_PER_PROCESS": str(per_process),
    }


@dataclass
class LocustRun:
    """A Locust process under way, and what is needed to account for it afterwards."""

    lab: str
    options: LoadOptions
    run_dir: Path
    process: subprocess.Popen[bytes]
    started: float
    cpu_before: float
    generator: str = "locust"


def start_load(lab: str, options: LoadOptions, run_dir: Path) -> LocustRun:
    """Start the load in the background; its output goes to run_dir. Locust against the lab's
    endpoint, or, for a lab with a client block, the in-lab clients (same samples, same summary)."""
    container = inlab.client_container(lab)
    if container is not None:
        return _start_inlab(lab, options, run_dir, container)
    host = endpoint_url(lab, options.endpoint)
    argv = locust_argv(host, locust_files(lab, options), options, run_dir)
    env = {**_environment(run_dir, options), **_kind_environment(lab)}
    cpu_before = _children_cpu()
    with open(run_dir / "locust.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(argv, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=run_dir)
    return LocustRun(lab, options, run_dir, process, time.time(), cpu_before)


def _start_inlab(lab: str, options: LoadOptions, run_dir: Path, container: str) -> LocustRun:
    require_up(lab)
    if options.locustfile is not None or options.web:
        raise UsageError(f"lab '{lab}' generates its load inside the lab; --locustfile and --web do not apply")
    options = replace(options, rate=inlab.effective_rate(options.users, options.rate))
    cpu_before = _children_cpu()
    process = inlab.start_clients(container, options.users, float(options.rate or 0), options.duration_s,
                                  options.path, run_dir)
    return LocustRun(lab, options, run_dir, process, time.time(), cpu_before, generator="in-lab client")


def finish_load(run: LocustRun) -> tuple[list[Sample], dict[str, Any]]:
    """Wait for Locust to end; return every sample and the run's summary."""
    run.process.wait()
    wall = time.time() - run.started
    samples = read_samples(run.run_dir)
    if not samples:
        raise LoadError(_no_samples_message(run.process.returncode, run.run_dir))
    summary = summarize(run.lab, run.run_dir.name, samples, run.options, _children_cpu() - run.cpu_before, wall)
    summary["locust_exit_code"] = run.process.returncode
    summary["generator"] = run.generator
    summary["errors"] = failure_kinds(run.run_dir)
    return samples, summary


def failure_kinds(run_dir: Path, limit: int = 5) -> list[dict[str, Any]]:
    """The most frequent reasons requests failed, most frequent first, so a failed request says why;
    past `limit`, one row for the other reasons. Counted by labctl's plugin from the same requests
    as the samples (Locust's locust_failures.csv is written once a second and misses the last one)."""
    files = sorted(run_dir.glob("failures-*.csv")) or [run_dir / "locust_failures.csv"]
    counts: Counter[tuple[str, str]] = Counter()
    for path in files:
        if path.is_file():
            with open(path, encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle):
                    if row.get("Occurrences", "").isdigit():
                        counts[(f"{row['Method']} {row['Name']}", row["Error"])] += int(row["Occurrences"])
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    kinds = [{"error": error, "request": request, "count": count} for (request, error), count in ranked[:limit]]
    if len(ranked) > limit:
        rest = ranked[limit:]
        kinds.append({"error": f"{len(rest)} other reasons", "request": "any", "count": sum(c for _, c in rest)})
    return kinds


def stop_load(run: LocustRun) -> None:
    """Stop Locust (or the in-lab clients) early (Ctrl-C, or a drill that must end)."""
    if run.generator != "locust":
        inlab.stop_clients(run.lab)
    if run.process.poll() is None:
        run.process.terminate()
        try:
            run.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            run.process.kill()


def run_load(lab: str, options: LoadOptions, progress: Progress) -> LoadResult:
    """Drive load at a lab, then write the run folder; returns its summary. Options and the
    lab's state are checked first: a load that cannot start leaves no run folder."""
    check_options(lab, options)
    require_up(lab)
    run_dir = new_run_dir(lab, "load")
    try:
        run = start_load(lab, options, run_dir)
    except BaseException:
        discard_if_empty(run_dir)
        raise
    try:
        _watch(run.process, run.run_dir, options, progress)
    except KeyboardInterrupt:
        stop_load(run)
        raise
    samples, summary = finish_load(run)
    summary.update(_kind_reports(run, progress))
    write_run(run.run_dir, samples, summary)
    return LoadResult(run.run_dir, summary)


def _kind_environment(lab_name: str) -> dict[str, str]:
    # What the lab's blocks tell its users (an etcd block: how writes are read back).
    from labctl.running import attach

    lab = attach(lab_name).lab
    found: dict[str, str] = {}
    for block in lab.blocks.values():
        found.update(block.spec.load_environment(lab, block))
    return found


def _kind_reports(run: LocustRun, progress: Progress) -> dict[str, Any]:
    # What the lab's blocks add to the summary (a db block: its writes checked against the primary).
    from labctl.running import attach

    lab = attach(run.lab).lab
    found: dict[str, Any] = {}
    ended = time.time()
    for block in lab.blocks.values():
        found.update(block.spec.load_report(lab, block, run.run_dir, run.started, ended, progress))
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class SampleCounter:
    """Counts new sample lines as they are appended, reading each file only once."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.offsets: dict[Path, int] = {}

    def new_lines(self) -> int:
        count = 0
        for path in self.run_dir.glob("samples-*.csv"):
            with open(path, "rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                chunk = handle.read()
            self.offsets[path] = self.offsets.get(path, 0) + len(chunk)
            count += chunk.count(b"\n")
        return count


def _watch(process: subprocess.Popen[bytes], run_dir: Path, options: LoadOptions, progress: Progress) -> None:
    started = last = time.time()
    counter = SampleCounter(run_dir)
    while process.poll() is None:
        time.sleep(1.0)
        now = time.time()
        rate = counter.new_lines() / max(now - last, 1e-9)
        last = now
        total = "" if options.web else f"/{options.duration_s:.0f}"
        progress(f"{now - started:.0f}{total}s  ~{rate:.0f} req/s")


def read_samples(run_dir: Path) -> list[Sample]:
    """Every request recorded by every Locust process of a run."""
    samples: list[Sample] = []
    for path in sorted(run_dir.glob("samples-*.csv")):
        with open(path, encoding="utf-8") as handle:
            samples.extend(parse_samples(handle))
    return samples


def _no_samples_message(returncode: int, run_dir: Path) -> str:
    log_file = run_dir / ("locust.log" if (run_dir / "locust.log").exists() else inlab.LOG_FILE)
    log = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
    how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
    return "\n".join([f"the load generator {how} without recording a request; last lines of "
                      f"{log_file}:", *("    " + line for line in log)])


def summarize(lab: str, run_id: str, samples: list[Sample], options: LoadOptions, cpu_seconds: float,
              wall: float) -> dict[str, Any]:
    """The numbers of a run, as summary.json and `--json` print them."""
    start = min(s.at for s in samples)
    duration = max(max(s.at for s in samples) - start, 1e-9)
    latencies = sorted(s.latency_ms for s in samples)
    backends = Counter(s.backend for s in samples if s.from_backend)
    answered = sum(backends.values())
    elsewhere = Counter(s.answered_by for s in samples if not s.from_backend)
    cpu_per_process = cpu_seconds / max(wall, 1e-9) / options.processes
    return {
        "lab": lab, "run_id": run_id, "duration_s": round(duration, 2),
        "requests": len(samples), "failures": sum(1 for s in samples if not s.ok),
        "rps": round(len(samples) / duration, 1),
        "latency_ms": {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
                       "p99": percentile(latencies, 0.99), "max": latencies[-1]},
        "backends": dict(sorted(backends.items())),
        "backend_share": {b: round(c / answered, 4) for b, c in sorted(backends.items())},
        "not_from_a_backend": dict(elsewhere.most_common()),
        "load_gen_cpu": round(cpu_seconds / max(wall, 1e-9) / (os.cpu_count() or 1), 3),
        "load_gen_cpu_per_process": round(cpu_per_process, 3),
        "load_gen_cpu_seconds": round(cpu_seconds, 2),
        "load_gen_bound": cpu_per_process >= BOUND_CPU_PER_PROCESS,
        "model": "open" if options.rate else "closed",
        "target_rps": options.rate, "users": options.users, "processes": options.processes,
        "path": options.path,
    }


def write_run(run_dir: Path, samples: list[Sample], summary: dict[str, Any]) -> None:
    """summary.json, timeline.csv and timeline.png in the run folder."""
    start = min(s.at for s in samples)
    seconds = bucket(samples, start)
    backends = sorted(summary["backends"])
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_timeline(run_dir / "timeline.csv", seconds, backends)
    draw_chart(run_dir / "timeline.png", seconds, backends, f"{summary['lab']} {summary['run_id']}")
