"""Every shipped guide renders whole in the terminal: no word of its Markdown source is lost at any width."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.cells import cell_len

from labctl import console

GUIDES = sorted((Path(__file__).parents[2] / "labs").glob("*/README*.md"))


def source_words(markdown: str) -> list[str]:
    """The words a reader must see: Markdown syntax (link targets, emphasis, code fences, table
    rules and pipes, list and quote markers) removed."""
    text = re.sub(r"^\s*```.*$", "", markdown, flags=re.MULTILINE)  # fences, in list items too
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<(https?://[^>]*)>", r"\1", text)
    text = re.sub(r"^\s*\|?[\s:|-]+\|[\s:|-]*$", "", text, flags=re.MULTILINE)
    text = re.sub(r"^\s*(?:#+|>|[-*+]|\d+\.)\s", " ", text, flags=re.MULTILINE)
    text = re.sub(r"[`|]|\*\*|__", " ", text)
    return text.split()


def render(markdown: str, width: int, monkeypatch: pytest.MonkeyPatch) -> str:
    buffer = io.StringIO()
    # The CLI's own console (soft_wrap and all), writing to a buffer at a fixed width.
    monkeypatch.setattr(console.out, "file", buffer)
    monkeypatch.setattr(console.out, "_width", width)
    console.show_guide(markdown)
    return buffer.getvalue()


def missing_words(markdown: str, rendered: str) -> list[str]:
    # Compare without spaces: a word may be wrapped at a hyphen or slash, never lost.
    flat = "".join(rendered.split())
    return [word for word in source_words(markdown) if word not in flat]


def test_shipped_guides_are_found() -> None:
    assert len(GUIDES) >= 12


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.parent.name)
def test_guide_renders_every_word(guide: Path, width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    markdown = guide.read_text(encoding="utf-8")
    rendered = render(markdown, width, monkeypatch)
    assert missing_words(markdown, rendered) == []
    assert max(cell_len(line) for line in rendered.splitlines()) <= width  # Korean takes two cells


def test_guide_lines_fit_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    markdown = "- " + " ".join(["word"] * 40) + "\n\n> " + " ".join(["quote"] * 30) + "\n"
    rendered = render(markdown, 60, monkeypatch)
    assert rendered.count("word") == 40 and rendered.count("quote") == 30
    assert all(cell_len(line) <= 60 for line in rendered.splitlines())
