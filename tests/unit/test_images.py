"""Image profiles: which image each role runs on, and that every built image has its recipe."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from labctl import images
from labctl.console import image_table
from labctl.errors import UsageError
from labctl.lifecycle import blocks_by_role, required_roles
from labctl.model.lab import list_lab_names, load_lab


@pytest.mark.parametrize("profile", images.PROFILES)
@pytest.mark.parametrize("role", images.ROLES)
def test_every_image_built_here_has_a_dockerfile(role: str, profile: str) -> None:
    ref = images.image_ref(role, profile)
    if ref.startswith("labctl/"):
        assert images.dockerfile(role, profile).is_file(), ref
    else:
        assert ref == images.UPSTREAM[role]


@pytest.mark.parametrize("role", sorted(images.UPSTREAM_BASES))
def test_upstream_recipes_build_on_the_base_labctl_pulls(role: str) -> None:
    text = images.dockerfile(role, "upstream").read_text(encoding="utf-8")
    declared = re.search(r"^ARG BASE=(\S+)$", text, re.M)
    base = declared.group(1) if declared else re.search(r"^FROM (\S+)$", text, re.M).group(1)  # type: ignore[union-attr]
    assert base == images.upstream_base(role)


@pytest.mark.parametrize("role", ["mysql", "mariadb"])
def test_upstream_db_nodes_are_the_official_image_with_the_health_agent(role: str) -> None:
    assert images.image_ref(role, "upstream") == f"labctl/{role}:upstream"
    text = images.dockerfile(role, "upstream").read_text(encoding="utf-8")
    assert "COPY db-agent.sh upstream-entrypoint.sh /usr/local/bin/" in text
    assert "/docker-entrypoint-initdb.d/zz-labctl-init-done.sh" in text


@pytest.mark.parametrize("name", [n for n in list_lab_names() if n.startswith("db-")])
def test_db_labs_may_ask_for_the_upstream_profile(name: str) -> None:
    roles = required_roles(load_lab(name))
    assert images.resolve_profile("upstream", roles) == ("upstream", "asked for with --profile")
    assert images.resolve_profile("local", roles) == ("local", "asked for with --profile")


def test_an_unknown_profile_names_the_profiles_there_are() -> None:
    with pytest.raises(UsageError, match=r"unknown image profile 'cloud' \(profiles: upstream, local\)"):
        images.resolve_profile("cloud", ["app"])


def test_images_list_fits_80_columns_with_every_name_whole() -> None:
    infos = [images.ImageInfo(role, profile, images.image_ref(role, profile), True, False, 876.4,
                              "2026-12-01T19:32:48")
             for profile in images.PROFILES for role in images.ROLES]
    screen = Console(width=80, record=True, file=io.StringIO())
    screen.print(image_table(infos))
    text = screen.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    for info in infos:
        assert f" {info.ref} " in text
    assert "stale" in text and "2026-12-01" in text


def test_a_profile_that_falls_back_to_local_says_what_each_block_runs_instead(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "find_image", lambda ref: None)
    monkeypatch.setattr(images, "pull_image", lambda ref: False)
    lab = load_lab("db-replication")
    assert blocks_by_role(lab) == {"mysql": ["db"], "app": ["app"]}
    profile, reason = images.resolve_profile(None, required_roles(lab), blocks_by_role(lab))
    assert (profile, reason) == ("local", (
        "mysql:8.4 is not here and cannot be pulled; built from Debian packages instead: "
        "app: the sample app on Debian trixie's Python 3.13 (upstream: python:3.12-slim); "
        "db: MySQL from Debian unstable, a 9.x release (upstream: MySQL 8.4)"))


def test_every_role_says_what_the_local_profile_builds() -> None:
    assert set(images.LOCAL_BUILDS) == set(images.ROLES)
