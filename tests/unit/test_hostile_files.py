"""Lab and drill files that are not what they should be end with exit 1 and one clear line,
in bounded time and memory, and create nothing (the corpus is in tests/unit/hostile_files.py)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.unit.hostile_files import LARGEST_ACCEPTED, cases, commands, write_labs

REPO = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 1024 * 2**20  # address space of the subprocess: a runaway fails here, not the machine
MAX_RSS_KB = 150 * 1024  # labctl validate peaks at about 55 MB
MAX_SECONDS = 2.0  # per command; the slowest case takes about 0.3 s
NOT_UTF8 = "not UTF-8 text: a NUL byte (is it a binary or UTF-16 file?)"
TOO_MANY = "too many values: more than 10,000{} (a lab or drill file has a few hundred at most)"
# Case -> (line, message); {of} is what the mapping holds, which differs for a lab and a drill.
EXPECTED: dict[str, tuple[int | None, str]] = {
    "billion-laughs": (6, TOO_MANY.format(" once its aliases are expanded")),
    "control-character": (2, "not a text file: character U+0007 is not allowed in YAML"),
    "deep-nesting": (3, "values nested more than 32 levels deep"),
    "duplicate-key": (3, "title: duplicate key"),
    "empty": (1, "expected a mapping of {of}, got an empty file"),
    "latin1": (2, "not UTF-8 text: byte 0xe9 is not UTF-8"),
    "list-as-key": (1, "invalid YAML: a key must be a name, not a list or a mapping"),
    "local-tag": (1, "invalid YAML: tag '!secret' is not allowed (labctl reads plain values only)"),
    "nul-in-the-middle": (4, NOT_UTF8),
    "over-1-mib": (None, "file too large: over 1 MiB (a lab or drill file is a few KB)"),
    "python-tag": (1, "invalid YAML: tag '!!python/object/apply:os.system' is not allowed "
                      "(labctl reads plain values only)"),
    "random-bytes": (1, NOT_UTF8),
    "self-alias": (3, "an alias refers to a value that contains it"),
    "single-value": (1, "expected a mapping of {of}, got a single value"),
    "syntax-error": (3, "invalid YAML: expected ',' or ']', but got ':'"),
    "tab-indent": (3, "invalid YAML: found character '\\t' that cannot start any token"),
    "too-many-values": (3, TOO_MANY.format("")),
    "top-level-list": (1, "expected a mapping of {of}, got a list"),
    "two-documents": (2, "invalid YAML: expected a single document in the stream (but found another document)"),
    "undefined-alias": (1, "invalid YAML: found undefined alias 'nothing'"),
    "utf16": (1, "not UTF-8 text: it starts with a UTF-16 or UTF-32 byte order mark (save the file as UTF-8)"),
    "utf16-no-bom": (1, NOT_UTF8),
}


@dataclass
class Bounded:
    """A finished subprocess: exit code, output and its own peak RSS."""

    returncode: int
    stdout: str
    stderr: str
    max_rss_kb: int


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))


def run_bounded(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60.0) -> Bounded:
    """Run argv with a wall-clock timeout and memory and CPU limits; wait4 gives its own RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err, preexec_fn=_limits)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                os.wait4(process.pid, 0)
                out.seek(0)
                pytest.fail(f"{argv[2:]} still running after {timeout:.0f}s; last output: {out.read()[-500:]!r}")
            time.sleep(0.02)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Bounded(process.returncode, out.read().decode(), err.read().decode(), usage.ru_maxrss)


@dataclass
class Corpus:
    """Where the corpus was written, what the driver reported, and what was there before."""

    root: Path
    env: dict[str, str]
    results: dict[tuple[str, ...], dict[str, Any]]
    max_rss_kb: int
    files_before: set[Path]


def _tree(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("hostile")
    write_labs(root / "labs")
    before = _tree(root)
    env = {**os.environ, "LABCTL_LABS_DIR": str(root / "labs"), "LABCTL_HOME": str(root / "home"),
           "PYTHONPATH": str(REPO)}
    run = run_bounded([sys.executable, "-m", "tests.unit.hostile_files", "--drive", str(root / "labs")], root, env)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    results = {tuple(line["args"]): line for line in lines[:-1]}
    return Corpus(root, env, results, max(run.max_rss_kb, lines[-1]["max_rss_kb"]), before)


def expected_line(name: str, args: list[str]) -> str:
    line, message = EXPECTED[name]
    where = f"labs/{name}/lab.yaml" if args[0] == "validate" else f"labs/{name}-drill/drills/{name}.yaml"
    of = "title, summary and blocks" if args[0] == "validate" else "title, load, steps and expect"
    return f"error: {where}{f':{line}' if line else ''} {message.format(of=of)}\n"


def test_every_case_has_its_expected_text() -> None:
    assert set(cases()) - {LARGEST_ACCEPTED} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_line_exit_1_in_bounded_time(corpus: Corpus, name: str) -> None:
    for args in commands(name):
        result = corpus.results[tuple(args)]
        assert (result["exit"], result["output"]) == (1, expected_line(name, args)), (args, result["raised"])
        assert result["seconds"] < MAX_SECONDS, args


def test_the_largest_accepted_file_validates_quickly(corpus: Corpus) -> None:
    result = corpus.results[("validate", LARGEST_ACCEPTED)]
    assert result["exit"] == 0 and result["output"].endswith("/lab.yaml: ok\n")
    assert result["seconds"] < MAX_SECONDS


def test_bounded_memory_and_nothing_created(corpus: Corpus) -> None:
    assert corpus.max_rss_kb < MAX_RSS_KB
    assert _tree(corpus.root) == corpus.files_before  # no home/, runs/, compose/, nor the tag's 'pwned'


@pytest.mark.parametrize("name", ["billion-laughs", "random-bytes"])
def test_the_real_command_line(corpus: Corpus, name: str) -> None:
    run = run_bounded([sys.executable, "-m", "labctl", "validate", name], corpus.root, corpus.env, timeout=30)
    assert (run.returncode, run.stdout, run.stderr) == (1, "", expected_line(name, ["validate"]))
    assert run.max_rss_kb < MAX_RSS_KB
    assert _tree(corpus.root) == corpus.files_before
