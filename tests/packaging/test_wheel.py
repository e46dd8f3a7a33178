"""`pip install .` builds a wheel that carries labs/, templates/ and images/, so an
installed labctl works from any directory, not only from the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    [wheel] = out.glob("labctl-*.whl")
    return wheel


def test_wheel_carries_data_and_runs_from_elsewhere(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in (
        "labctl/_data/labs/lb-nginx/lab.yaml",
        "labctl/_data/labs/lb-nginx/README.md",
        "labctl/_data/templates/compose.yaml.j2",
        "labctl/_data/templates/nginx/nginx.conf.j2",
        "labctl/_data/images/app/app.py",
    ):
        assert expected in names, f"{expected} missing from {wheel.name}"

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    env.pop("LABCTL_HOME", None)
    env.pop("LABCTL_LABS_DIR", None)

    def labctl(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "labctl", *args], cwd=elsewhere, env=env,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "lb-nginx" in labctl("list")
    labctl("render", "lb-nginx")
    rendered = tmp_path / "home" / ".local" / "share" / "labctl" / "compose" / "lb-nginx"
    assert (rendered / "compose.yaml").is_file() and (rendered / "lb" / "nginx.conf").is_file()
    assert not (REPO / "labctl" / "_data").exists()
