"""Every string the pages show has its Simplified Chinese translation: the templates'
_("…") and the scripts' t("…") (which must be listed in handlers/locale.JS_STRINGS)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from handlers.locale import JS_STRINGS, LOCALE_DIR

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent.parent
DYNAMIC = {"viewer", "deployer", "admin", "wrong name or password"}  # _(variable) in templates


def template_strings() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "templates").glob("*.html"):
        text = path.read_text()
        found |= set(re.findall(r'_\("((?:[^"\\]|\\.)*)"\)', text))
        found |= set(re.findall(r"_\('((?:[^'\\]|\\.)*)'\)", text))
    return found


def script_strings() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "static" / "js").rglob("*.js"):
        if path.name == "events.js":
            continue
        text = path.read_text()
        found |= set(re.findall(r'\bt\(\s*"((?:[^"\\]|\\.)*)"', text))
        for singular, plural in re.findall(r'\btn\(\s*"([^"]*)",\s*"([^"]*)"', text):
            found |= {singular, plural}
    return found


def chinese() -> dict[str, str]:
    with (LOCALE_DIR / "zh_CN.csv").open(encoding="utf-8") as handle:
        return {row[0]: row[1] for row in csv.reader(handle) if row}


def test_scripts_strings_are_handed_to_the_page():
    assert script_strings() <= set(JS_STRINGS)


def test_every_string_has_a_chinese_translation():
    translations = chinese()
    wanted = template_strings() | set(JS_STRINGS) | DYNAMIC
    missing = sorted(wanted - set(translations))
    assert not missing, missing
    for english, text in translations.items():
        assert text and text != english, english
        assert set(re.findall(r"\{\w+\}", english)) == set(re.findall(r"\{\w+\}", text)), english
