"""Which language a lab guide is shown in: `--lang`, else the locale, else English."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from labctl.errors import UsageError

LANGUAGES = {"en": "English", "ko": "한국어"}
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def locale_language(environ: Mapping[str, str] = os.environ) -> str:
    """ko when the locale says Korean (ko_KR.UTF-8 ...), else en; the first variable set wins."""
    for variable in LOCALE_VARIABLES:
        value = environ.get(variable, "")
        if value:
            return "ko" if value.lower().startswith("ko") else "en"
    return "en"


def pick_guide(lab: str, guides: dict[str, Path], requested: str | None,
               environ: Mapping[str, str] = os.environ) -> tuple[Path, str, str]:
    """(guide file, its language, a note for the reader) for `labctl guide LAB [--lang L]`."""
    if requested is not None and requested not in guides:
        written = ", ".join(f"{lang} ({LANGUAGES[lang]})" for lang in guides)
        raise UsageError(f"lab '{lab}' has no {LANGUAGES.get(requested, requested)} guide; it is written in {written}")
    wanted = requested or locale_language(environ)
    language = wanted if wanted in guides else "en"
    others = [lang for lang in guides if lang != language]
    note = " ".join(_other_language_note(lab, lang) for lang in others)
    if wanted != language:
        note = f"no {LANGUAGES[wanted]} guide for {lab} yet; showing the English one. " + note
    return guides[language], language, note.strip()


def _other_language_note(lab: str, language: str) -> str:
    if language == "ko":
        return f"한국어 안내서: labctl guide {lab} --lang ko"
    return f"in English: labctl guide {lab} --lang en"
