"""Running external programs (docker, compose, debootstrap) with readable failures."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from labctl.errors import CommandError, DockerUnavailableError


def run(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output as text, and raise CommandError on failure."""
    argv = [str(part) for part in cmd]
    try:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise DockerUnavailableError(
            f"'{argv[0]}' is not installed or not on PATH; run 'labctl doctor' for what is missing"
        ) from exc
    if check and result.returncode != 0:
        raise CommandError(argv, result.returncode, result.stdout, result.stderr)
    return result


def output(cmd: Sequence[str], **kwargs: object) -> str:
    """Run a command and return its stripped standard output."""
    return run(cmd, **kwargs).stdout.strip()  # type: ignore[arg-type]
