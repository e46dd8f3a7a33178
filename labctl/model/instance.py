"""The running instance's name: one concept for a lab and its copies (`labctl up LAB --as NAME`).

A plain lab runs as its own name (`lb-nginx`); a copy runs as `LAB--NAME` (`lb-nginx--alice`).
That one string is what the rest of labctl already keys everything by: the Compose project
(`labctl-lb-nginx--alice`), the `io.labctl.lab` label, `compose/<instance>/` with its passwords,
and `runs/<instance>/`. So a copy needs no code of its own past this module and the port
offset it is placed at (`labctl.copies`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import TYPE_CHECKING, Any

from labctl import paths
from labctl.errors import UsageError

if TYPE_CHECKING:
    from labctl.model.lab import Lab

SEPARATOR = "--"
MAX_COPY_NAME = 24
# Docker's rule for project names (lowercase letters, digits, dashes), without a doubled dash,
# which separates the lab from the copy and no lab name has.
_COPY_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-))*$")


def check_copy_name(name: str) -> str:
    """The `--as` NAME when it can name a copy; UsageError saying why it cannot."""
    if not name or len(name) > MAX_COPY_NAME:
        raise UsageError(f"--as {name!r}: a copy's name has 1 to {MAX_COPY_NAME} characters")
    if not _COPY_NAME.match(name) or name.endswith("-"):
        raise UsageError(f"--as {name!r}: a copy's name uses lowercase letters, digits and single dashes, "
                         "and starts and ends with a letter or digit (like alice or team-3)")
    return name


def instance_name(lab: str, copy: str | None) -> str:
    """The instance `lab` runs as: its own name, or `LAB--COPY` for a copy."""
    if copy is None:
        return lab
    if SEPARATOR in lab:
        raise UsageError(f"give the lab's own name with --as, not the copy's ('{lab}')")
    return f"{lab}{SEPARATOR}{check_copy_name(copy)}"


def split_instance(instance: str) -> tuple[str, str]:
    """(lab, copy) of an instance name; copy is '' for a plain lab."""
    lab, _, copy = instance.partition(SEPARATOR)
    if copy:
        check_copy_name(copy)
    return lab, copy


def lab_ref(instance: str) -> str:
    """How a user names an instance on the command line: `lb-nginx` or `lb-nginx --as alice`."""
    lab, copy = split_instance(instance)
    return f"{lab} --as {copy}" if copy else lab


def reserved_offset(instance: str) -> int:
    """The port offset a copy was placed at by an earlier `up` (0 when it never was)."""
    try:
        snapshot = json.loads(paths.snapshot_file(instance).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return int(snapshot.get("port_offset", 0))


def with_port_offset(lab: Lab, offset: int) -> Lab:
    """The same lab with every published host port moved up by `offset`."""
    blocks = {name: dataclasses.replace(block, params=_shifted(block.params, offset))
              for name, block in lab.blocks.items()}
    return dataclasses.replace(lab, blocks=blocks, port_offset=lab.port_offset + offset)


def _shifted(params: dict[str, Any], offset: int) -> dict[str, Any]:
    if "publish" not in params:
        return params
    return {**params, "publish": {name: port + offset for name, port in params["publish"].items()}}
