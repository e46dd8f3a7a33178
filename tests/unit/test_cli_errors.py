"""How the CLI ends when a command fails: labctl's errors, anything unexpected, Ctrl-C."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from labctl.cli import main
from labctl.db import secrets
from labctl.errors import LabctlError
from labctl.model import lab


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), prog_name="labctl")
    return result.exit_code, result.output


def fail_with(exc: BaseException) -> Callable[..., None]:
    def raiser(*_args: object, **_kwargs: object) -> None:
        raise exc

    return raiser


def test_an_unexpected_exception_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "list_lab_names", fail_with(KeyError("title")))
    code, output = invoke("list")
    assert code == 1
    assert output == ("error: labctl list failed unexpectedly: KeyError: 'title' "
                      "(`labctl --debug list ...` shows the traceback)\n")


def test_the_message_names_a_subcommand_and_keeps_to_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "load_secrets", fail_with(RuntimeError("first line\nsecond line")))
    code, output = invoke("db", "password", "some-lab")
    assert code == 1
    assert output == ("error: labctl db password failed unexpectedly: RuntimeError: first line "
                      "(`labctl --debug db password ...` shows the traceback)\n")


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "list_lab_names", fail_with(ZeroDivisionError("division by zero")))
    code, output = invoke("--debug", "list")
    assert code == 1
    assert "Traceback (most recent call last)" in output and "ZeroDivisionError" in output
    assert output.endswith("error: labctl list failed unexpectedly: ZeroDivisionError: division by zero "
                           "(`labctl --debug list ...` shows the traceback)\n")


def test_labctl_errors_keep_their_message_and_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "list_lab_names", fail_with(LabctlError("no labs here")))
    assert invoke("list") == (1, "error: no labs here\n")


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "list_lab_names", fail_with(KeyboardInterrupt()))
    assert invoke("list") == (130, "interrupted\n")


def test_click_exits_pass_through() -> None:
    assert invoke("--version")[0] == 0
    assert invoke("down")[0] == 2
    assert invoke("chaos", "some-lab", "no-such-fault", "app")[0] == 2


def test_a_real_process_prints_no_traceback() -> None:
    code = ("import sys\nfrom labctl.model import lab\n"
            "def broken(*a, **k):\n    raise OSError('disk on fire')\n"
            "lab.list_lab_names = broken\nfrom labctl.cli import main\n"
            "sys.argv = ['labctl', 'list']\nmain(prog_name='labctl')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == ("error: labctl list failed unexpectedly: OSError: disk on fire "
                           "(`labctl --debug list ...` shows the traceback)\n")
