"""Copies of a lab (`--as NAME`) without Docker: names, ports, placement and what renders."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from labctl import copies
from labctl.cli import main
from labctl.errors import LabctlError, UsageError
from labctl.model.instance import check_copy_name, instance_name, lab_ref, split_instance, with_port_offset
from labctl.model.lab import list_lab_names, load_lab
from labctl.render import render_files
from labctl.running import write_snapshot

IMAGES = {"app": "labctl/app:local", "nginx": "labctl/nginx:local"}


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABCTL_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("name", ["alice", "team-3", "a", "7", "x" * 24])
def test_good_copy_names(name: str) -> None:
    assert check_copy_name(name) == name


@pytest.mark.parametrize("name", ["Alice", "bob_1", "-bob", "bob-", "a--b", "a.b", "", "x" * 25, "a b"])
def test_bad_copy_names_are_usage_errors(name: str) -> None:
    with pytest.raises(UsageError, match=f"--as {name!r}: a copy's name"):
        check_copy_name(name)


def test_instance_names_round_trip() -> None:
    assert instance_name("lb-nginx", None) == "lb-nginx"
    assert instance_name("lb-nginx", "alice") == "lb-nginx--alice"
    assert split_instance("lb-nginx--alice") == ("lb-nginx", "alice")
    assert split_instance("lb-nginx") == ("lb-nginx", "")
    assert lab_ref("lb-nginx--alice") == "lb-nginx --as alice" and lab_ref("lb-nginx") == "lb-nginx"
    with pytest.raises(UsageError, match="the lab's own name"):
        instance_name("lb-nginx--alice", "bob")


def test_a_copy_is_its_own_project_with_its_ports_moved() -> None:
    copy = with_port_offset(load_lab("lb-nginx--alice"), 300)
    assert (copy.name, copy.copy, copy.lab_name, copy.project) == (
        "lb-nginx--alice", "alice", "lb-nginx", "labctl-lb-nginx--alice")
    assert copy.endpoint_urls() == {"http": "http://127.0.0.1:8380"}
    compose = yaml.safe_load(render_files(copy, IMAGES)["compose.yaml"])
    assert compose["name"] == "labctl-lb-nginx--alice"
    lb = compose["services"]["lb"]
    assert lb["ports"] == ["127.0.0.1:8380:80"] and lb["container_name"] == "labctl-lb-nginx--alice-lb"
    assert {k: lb["labels"][k] for k in ("io.labctl.lab", "io.labctl.copy", "io.labctl.copy-of")} == {
        "io.labctl.lab": "lb-nginx--alice", "io.labctl.copy": "alice", "io.labctl.copy-of": "lb-nginx"}


def test_a_plain_lab_carries_no_copy_labels() -> None:
    compose = render_files(load_lab("lb-nginx"), IMAGES)["compose.yaml"]
    assert "io.labctl.copy" not in compose


def test_a_copy_keeps_the_offset_it_was_placed_at() -> None:
    write_snapshot(with_port_offset(load_lab("lb-nginx--bob"), 700), IMAGES)
    again = load_lab("lb-nginx--bob")
    assert again.port_offset == 700 and again.endpoint_urls()["http"] == "http://127.0.0.1:8780"


@pytest.mark.parametrize("name", list_lab_names())
def test_every_shipped_lab_has_room_for_twenty_copies_below_the_ephemeral_range(name: str) -> None:
    ports = copies.published_ports(load_lab(name))
    offsets = copies.candidate_offsets(ports, copies.FIRST_EPHEMERAL_PORT)
    assert not ports or len(offsets) >= 20, f"{name}: room for {len(offsets)} copies"
    assert all(max(ports) + offset < copies.FIRST_EPHEMERAL_PORT for offset in offsets)


def test_placement_skips_taken_ports_and_shipped_labs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copies, "ports_in_use_by_labs", lambda exclude: {8080, 8180, 8380})
    monkeypatch.setattr(copies, "port_is_free", lambda port, bind: port != 8280)
    placed = copies.place(load_lab("lb-nginx--carol"))
    assert placed.port_offset == 400 and placed.endpoint_urls()["http"] == "http://127.0.0.1:8480"


def test_placement_says_when_there_is_no_room(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copies, "ports_in_use_by_labs", lambda exclude: set(range(8000, 33000)))
    with pytest.raises(LabctlError, match="no room for another copy of 'lb-nginx' below port"):
        copies.place(load_lab("lb-nginx--dave"))


def test_a_lab_on_a_fixed_subnet_cannot_be_copied() -> None:
    with pytest.raises(LabctlError, match="pins its network to a fixed subnet"):
        copies.place(load_lab("lb-dns--erin"))


def test_the_cli_names_a_bad_copy_name_and_a_missing_lab() -> None:
    result = CliRunner().invoke(main, ["status", "lb-nginx", "--as", "Bob"])
    assert result.exit_code == 2 and "--as 'Bob': a copy's name uses lowercase letters" in result.output
    result = CliRunner().invoke(main, ["status", "--as", "bob"])
    assert result.exit_code == 2 and "--as NAME needs the LAB it is a copy of" in result.output
