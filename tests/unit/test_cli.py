"""The CLI without Docker: listing, showing, validating, guides, usage errors and exit codes."""

from __future__ import annotations

from click.testing import CliRunner

from labctl.cli import main


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_list_shows_every_lab() -> None:
    code, output = invoke("list")
    assert code == 0
    for lab in ("single-server", "lb-nginx", "lb-haproxy"):
        assert lab in output


def test_show_applies_overrides() -> None:
    code, output = invoke("show", "lb-nginx", "--set", "app.replicas=4")
    assert code == 0 and "app-4" in output and "http://127.0.0.1:8080" in output


def test_validate_ok_and_bad() -> None:
    assert invoke("validate", "lb-haproxy")[0] == 0
    code, output = invoke("validate", "lb-haproxy", "--set", "lb.health.fall=zero")
    assert code == 1
    assert "lb.health.fall: expected an integer from 1 to 100, got 'zero'" in output


def test_guide_prints_the_lab_guide() -> None:
    code, output = invoke("guide", "lb-haproxy")
    assert code == 0 and "active health checks" in output.lower()


def test_unknown_lab_is_an_expected_failure() -> None:
    code, output = invoke("show", "no-such-lab")
    assert code == 1 and "no lab named 'no-such-lab'" in output


def test_usage_errors_exit_2() -> None:
    assert invoke("down")[0] == 2
    assert invoke("up")[0] == 2
    assert invoke("images", "build", "--profile", "cloud")[0] == 2
