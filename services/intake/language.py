"""A person's language as EIDO's NIEM person fields give it, read as the BCP 47 tag teams list."""

from __future__ import annotations

import re
from typing import Any

import langcodes

BCP47 = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
# The NIEM members of nc:LanguageType a CAD may send, with or without the `nc:` prefix.
_MEMBERS = ("LanguageCode", "LanguageCodeISO639", "LanguageName", "LanguageText", "LanguageCategoryText")


def _values(language: Any) -> list[str]:
    """Every string a PersonPrimaryLanguage value holds, in order: itself, its members, its items."""
    if isinstance(language, str):
        return [language]
    if isinstance(language, list):
        return [v for item in language[:10] for v in _values(item)]
    if isinstance(language, dict):
        found: list[str] = []
        for member in _MEMBERS:
            for key in (member, f"nc:{member}"):
                if key in language:
                    found += _values(language[key])
        return found
    return []


def tag_of(text: str) -> str | None:
    """The BCP 47 tag of an ISO 639 code or tag (`spa`, `es-MX`) or an English name (`Spanish`);
    None when it is none of these."""
    text = text.strip()[:64]
    if not text:
        return None
    try:
        if re.fullmatch(BCP47, text) and (len(text) <= 3 or "-" in text):
            tag = langcodes.standardize_tag(text)
            language = langcodes.Language.get(tag)
            if not language.is_valid() or language.language in (None, "und"):
                return None
            return tag
        return langcodes.find(text).to_tag()
    except (LookupError, ValueError):
        return None


def primary_language(language: Any) -> tuple[str | None, list[str]]:
    """The first understood language of a PersonPrimaryLanguage value, and what was not understood."""
    unread: list[str] = []
    for text in _values(language):
        tag = tag_of(text)
        if tag is not None and re.fullmatch(BCP47, tag):
            return tag, unread
        unread.append(text[:64])
    return None, unread
