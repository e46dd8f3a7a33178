"""What `labctl load` prints, without Docker: who answered, and why requests failed."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from labctl import console


def printed(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(console, "out", Console(file=buffer, width=100, highlight=False))
    return buffer


def test_answers_no_backend_served_are_rows_of_their_own() -> None:
    summary = {"requests": 1000, "backends": {"app-1": 60, "app-2": 40},
               "not_from_a_backend": {"lb cache": 880, "lb itself": 20}}
    screen = Console(file=io.StringIO(), width=100, record=True)
    screen.print(console.answered_table(summary))
    rows = [line.split("│")[1:4] for line in screen.export_text().splitlines() if line.count("│") == 4]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["app-1", "60", "6.0%"], ["app-2", "40", "4.0%"],
        ["lb's cache (X-Cache-Status HIT)", "880", "88.0%"], ["lb itself (no X-Served-By)", "20", "2.0%"]]


def test_failure_reasons_that_add_up_print_no_note(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = printed(monkeypatch)
    console.show_errors([{"count": 46229, "request": "GET /", "error": "LocustBadStatusCode(code=429)"}], 46229)
    assert buffer.getvalue() == "  failed 46229x: GET /: LocustBadStatusCode(code=429)\n"


def test_failure_reasons_that_do_not_add_up_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = printed(monkeypatch)
    console.show_errors([{"count": 46229, "request": "GET /", "error": "[Errno 111] refused"}], 50742)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "  failed 46229x: GET /: [Errno 111] refused"  # brackets are text, not markup
    assert "reasons recorded for 46,229 of the 50,742 failed requests" in " ".join(lines[1:])
