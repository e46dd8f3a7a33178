"""One error hierarchy for labctl; the CLI maps it to exit codes in one place."""

from __future__ import annotations

from dataclasses import dataclass


class LabctlError(Exception):
    """An expected failure: the message says what, where, and what to do (exit 1)."""

    exit_code = 1


class UsageError(LabctlError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


class LabNotFoundError(LabctlError):
    """No lab folder by that name."""


@dataclass(frozen=True)
class Problem:
    """One problem in a lab file or override: where it is and what is wrong."""

    source: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        field = f" {self.field}:" if self.field else ""
        return f"{where}{field} {self.message}"


class LabConfigError(LabctlError):
    """A lab file (or a --set override) is invalid; carries every problem at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(str(problems[0]))
            return
        header = f"{len(problems)} problems in the lab definition:"
        super().__init__("\n".join([header, *(f"  {p}" for p in problems)]))


class DockerUnavailableError(LabctlError):
    """No Docker engine can be reached, or Compose v2 is missing."""


class PortBusyError(LabctlError):
    """A port the lab publishes is already taken by something else."""


class ImageError(LabctlError):
    """An image could not be found, pulled or built."""


class HealthTimeoutError(LabctlError):
    """Services did not become healthy in time; carries the names and their log tails."""

    def __init__(self, message: str, unhealthy: list[str]) -> None:
        self.unhealthy = unhealthy
        super().__init__(message)


class CommandError(LabctlError):
    """An external command failed; keeps the command, return code and output."""

    def __init__(self, cmd: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.cmd = cmd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(self._describe())

    def _describe(self) -> str:
        lines = [f"command failed (exit {self.returncode}): {' '.join(self.cmd)}"]
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            tail = text.strip().splitlines()[-20:]
            if tail:
                lines.append(f"{name}:")
                lines.extend(f"    {line}" for line in tail)
        return "\n".join(lines)


class EngineError(LabctlError):
    """The engine refused an operation on a container (the message is its explanation)."""


class ContainerGoneError(EngineError):
    """The container an operation names is not there (removed meanwhile, or never made)."""
