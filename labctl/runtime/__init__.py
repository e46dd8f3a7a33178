"""The only code that talks to Docker: the `Runtime` seam (base.py) and its local Compose
implementation (local.py); everything else asks `local_runtime()`."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labctl.runtime.base import Runtime


@functools.cache
def local_runtime() -> Runtime:
    """The runtime of labs on this machine's engine (one per process)."""
    from labctl.runtime.local import LocalCompose

    return LocalCompose()
