"""Lab and drill files that are not what they should be, and a driver that runs labctl on them.

The text cases are files in tests/unit/data/hostile/; the binary and large ones are made by
`generated()`, so the repository stays small. Each case becomes two labs: `<case>` whose
lab.yaml is the case, and `<case>-drill`, a valid lab whose drill `<case>` is the case.

    python -m tests.unit.hostile_files DIR       # write DIR/<case>/... to try them by hand:
    LABCTL_LABS_DIR=DIR labctl validate billion-laughs

`--drive DIR` runs `validate`, `drill --list` and `drill NAME` on every case in this one
process (one interpreter start for the whole corpus) and prints one JSON line per command,
then the process's peak RSS; the test runs it as a subprocess with a timeout and limits.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from pathlib import Path

CORPUS = Path(__file__).parent / "data" / "hostile"
VALID_LAB = "title: t\nsummary: s\napp: {kind: app}\n"
# Only `validate` runs on it: the largest lab file labctl accepts must still be quick.
LARGEST_ACCEPTED = "largest-accepted"


def generated() -> dict[str, bytes]:
    """The cases that are binary, or too large to keep in the repository."""
    one_mib = 1024 * 1024
    lab = "title: t\nsummary: s\n"
    return {
        "random-bytes": random.Random(12).randbytes(4096),
        "utf16": lab.encode("utf-16"),
        "utf16-no-bom": lab.encode("utf-16-le"),
        "nul-in-the-middle": b"title: t\nsummary: s\napp:\n  kind: \x00app\n",
        "latin1": "title: t\nsummary: caf\xe9\n".encode("latin-1"),
        "control-character": b"title: t\nsummary: a\x07b\n",
        "deep-nesting": (lab + "deep: " + "[" * 10_000 + "]" * 10_000 + "\n").encode(),
        "too-many-values": (lab + "items: [" + ", ".join(["1"] * 20_000) + "]\n").encode(),
        "over-1-mib": (lab + "#" * one_mib + "\n").encode(),
        LARGEST_ACCEPTED: (VALID_LAB + "#" * (one_mib - len(VALID_LAB) - 1) + "\n").encode(),
    }


def cases() -> dict[str, bytes]:
    """Every case by name: the files of the corpus folder, then the generated ones."""
    found = {path.stem: path.read_bytes() for path in sorted(CORPUS.glob("*.yaml"))}
    return {**found, **generated()}


def write_labs(root: Path) -> list[str]:
    """Write both labs of every case under `root`; returns the case names."""
    for name, content in cases().items():
        _lab(root / name, content)
        drills = _lab(root / f"{name}-drill", VALID_LAB.encode()) / "drills"
        drills.mkdir()
        (drills / f"{name}.yaml").write_bytes(content)
    return list(cases())


def _lab(folder: Path, lab_yaml: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "lab.yaml").write_bytes(lab_yaml)
    (folder / "README.md").write_text("# guide\n", encoding="utf-8")
    return folder


def commands(name: str) -> list[list[str]]:
    """The labctl commands the test runs on one case."""
    if name == LARGEST_ACCEPTED:
        return [["validate", name]]
    return [["validate", name], ["drill", f"{name}-drill", "--list"], ["drill", f"{name}-drill", name]]


def drive(root: Path) -> None:
    """Run every case's commands through the CLI; one JSON line each, then the peak RSS."""
    from click.testing import CliRunner

    from labctl.cli import main

    for name in sorted(p.name for p in root.iterdir() if not p.name.endswith("-drill")):
        for args in commands(name):
            started = time.monotonic()
            result = CliRunner().invoke(main, args)
            raised = None if isinstance(result.exception, (SystemExit, type(None))) else repr(result.exception)
            print(json.dumps({"args": args, "exit": result.exit_code, "output": result.output, "raised": raised,
                              "seconds": round(time.monotonic() - started, 3)}), flush=True)
    print(json.dumps({"max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--drive"]:
        drive(Path(sys.argv[2]))
    else:
        write_labs(Path(sys.argv[1]))
