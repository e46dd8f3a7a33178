"""Where labctl finds its lab files and templates, and where it writes its output."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# A source checkout keeps the data folders beside the package; a wheel carries them inside it.
_CHECKOUT_ROOT = PACKAGE_DIR.parent
_BUNDLED = PACKAGE_DIR / "_data"


def _data_dir(name: str) -> Path:
    bundled = _BUNDLED / name
    if bundled.is_dir():
        return bundled
    return _CHECKOUT_ROOT / name


def is_checkout() -> bool:
    """True when running from a source checkout (pyproject.toml beside the package)."""
    return (_CHECKOUT_ROOT / "pyproject.toml").is_file() and not _BUNDLED.is_dir()


def labs_dir() -> Path:
    """The folder of shipped labs; LABCTL_LABS_DIR points elsewhere (instructors, tests)."""
    override = os.environ.get("LABCTL_LABS_DIR")
    return Path(override) if override else _data_dir("labs")


def templates_dir() -> Path:
    """The Jinja2 templates that render labs into Compose projects."""
    return _data_dir("templates")


def images_dir() -> Path:
    """Build contexts of the images labctl builds (the sample app and the local profile)."""
    return _data_dir("images")


def home_dir() -> Path:
    """Where compose/ and runs/ go: LABCTL_HOME, else the checkout, else ~/.local/share/labctl."""
    override = os.environ.get("LABCTL_HOME")
    if override:
        return Path(override)
    if is_checkout():
        return _CHECKOUT_ROOT
    return Path.home() / ".local" / "share" / "labctl"


def compose_dir(lab: str) -> Path:
    """The rendered Compose project of one lab."""
    return home_dir() / "compose" / lab


def snapshot_file(lab: str) -> Path:
    """The record of a lab (or copy) as `up` rendered it, which later commands attach to."""
    return compose_dir(lab) / "labctl-snapshot.json"


def runs_dir(lab: str) -> Path:
    """The run journals of one lab."""
    return home_dir() / "runs" / lab
