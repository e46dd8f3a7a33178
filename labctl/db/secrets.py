"""Per-lab database passwords, generated once and kept owner-only in the rendered folder."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from labctl import paths
from labctl.errors import UsageError
from labctl.model.instance import lab_ref

USERS = ("root", "repl", "app")
FOLDER = "secrets"


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def ensure_secrets(rendered: Path) -> dict[str, str]:
    """The lab's passwords (made on first render), and the env files Compose hands the containers."""
    folder = rendered / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    store = folder / "passwords.json"
    try:
        passwords = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        passwords = {}
    if sorted(passwords) != sorted(USERS):
        passwords = {user: secrets.token_urlsafe(18) for user in USERS}
        _write_private(store, json.dumps(passwords, indent=2) + "\n")
    _write_private(folder / "db.env", f"MYSQL_ROOT_PASSWORD={passwords['root']}\n")
    _write_private(folder / "app.env", f"DB_USER=app\nDB_PASSWORD={passwords['app']}\n")
    return dict(passwords)


def load_secrets(lab: str) -> dict[str, str]:
    """The passwords of a rendered lab; a lab never rendered gets a usage error."""
    store = paths.compose_dir(lab) / FOLDER / "passwords.json"
    try:
        return dict(json.loads(store.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise UsageError(f"lab '{lab}' has no database passwords at {store}; "
                         f"run 'labctl up {lab_ref(lab)}' first") from exc
