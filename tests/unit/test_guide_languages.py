"""Guides in Korean and English: `labctl guide --lang`, the locale, and a Korean guide that
shows exactly the commands its English one shows (comments aside: they are translated)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labctl.errors import UsageError
from labctl.experiments.checkfile import has_checks, load_checks
from labctl.guides import locale_language, pick_guide
from labctl.model.lab import list_lab_names, load_lab

REPO = Path(__file__).resolve().parents[2]
PAIRS = sorted(p.parent.name for p in (REPO / "labs").glob("*/README.ko.md"))


def shell_commands(markdown: str) -> list[str]:
    """Every line of every ```sh block, its trailing comment and spacing dropped."""
    commands = []
    for block in re.findall(r"^\s*```sh\n(.*?)^\s*```", markdown, flags=re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(re.sub(r"\s+", " ", command))
    return commands


@pytest.mark.parametrize("name", list_lab_names())
def test_every_shipped_lab_has_its_guide_in_korean_and_english(name: str) -> None:
    assert set(load_lab(name).guides()) == {"en", "ko"}, f"{name}: write labs/{name}/README.ko.md"


@pytest.mark.parametrize("name", PAIRS)
def test_the_korean_guide_shows_the_commands_the_english_one_does(name: str) -> None:
    guides = load_lab(name).guides()
    english = shell_commands(guides["en"].read_text(encoding="utf-8"))
    korean = shell_commands(guides["ko"].read_text(encoding="utf-8"))
    assert english and korean == english


@pytest.mark.parametrize("name", PAIRS)
def test_the_korean_guide_is_korean_and_quotes_the_notes(name: str) -> None:
    text = load_lab(name).guides()["ko"].read_text(encoding="utf-8")
    hangul = len(re.findall(r"[\uac00-\ud7a3]", text))
    assert hangul > len(text) / 10, f"{name}: README.ko.md is mostly not Korean"
    assert text.lstrip().startswith("# ") and "> 노트:" in text


def test_the_commands_of_a_guide_are_read_from_its_sh_blocks() -> None:
    markdown = "x\n```sh\nlabctl up a   # 주석\n  # only a comment\ncurl -s  http://x\n```\n```text\nnot this\n```\n"
    assert shell_commands(markdown) == ["labctl up a", "curl -s http://x"]


@pytest.mark.parametrize(("environ", "language"), [
    ({"LANG": "ko_KR.UTF-8"}, "ko"), ({"LANG": "en_US.UTF-8"}, "en"), ({}, "en"),
    ({"LC_ALL": "C.UTF-8", "LANG": "ko_KR.UTF-8"}, "en"), ({"LC_MESSAGES": "ko_KR", "LANG": "en_US"}, "ko"),
])
def test_the_locale_picks_the_language(environ: dict[str, str], language: str) -> None:
    assert locale_language(environ) == language


def test_a_guide_in_both_languages_says_where_the_other_is() -> None:
    guides = load_lab("db-failover").guides()
    path, language, note = pick_guide("db-failover", guides, None, {"LANG": "ko_KR.UTF-8"})
    assert (path.name, language) == ("README.ko.md", "ko") and "--lang en" in note
    path, language, note = pick_guide("db-failover", guides, "en", {"LANG": "ko_KR.UTF-8"})
    assert (path.name, language) == ("README.md", "en") and "labctl guide db-failover --lang ko" in note


def test_a_korean_locale_without_a_korean_guide_falls_back_to_english(tmp_path: Path) -> None:
    english = tmp_path / "README.md"
    english.write_text("# x\n", encoding="utf-8")
    path, language, note = pick_guide("x", {"en": english}, None, {"LANG": "ko_KR.UTF-8"})
    assert (path, language) == (english, "en") and "showing the English one" in note


def test_asking_for_a_language_a_guide_is_not_in_is_an_error(tmp_path: Path) -> None:
    english = tmp_path / "README.md"
    with pytest.raises(UsageError, match="has no 한국어 guide; it is written in en"):
        pick_guide("x", {"en": english}, "ko", {})


def test_every_lab_has_an_english_guide() -> None:
    assert all("en" in load_lab(name).guides() for name in list_lab_names())


@pytest.mark.parametrize("name", [n for n in list_lab_names() if has_checks(n)])
def test_every_checkpoint_asks_its_question_in_korean_too(name: str) -> None:
    for checkpoint in load_checks(name):
        assert checkpoint.question_ko and checkpoint.answer_ko, f"{name} {checkpoint.id}: question_ko and answer_ko"
        assert re.search(r"[\uac00-\ud7a3]", checkpoint.question_ko), f"{name} {checkpoint.id}: not Korean"
        assert checkpoint.question_in("ko") == checkpoint.question_ko
        assert checkpoint.question_in("en") == checkpoint.question
