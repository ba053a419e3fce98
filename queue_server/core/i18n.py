"""Languages and message tables.

Every user-facing string lives in a TOML message table (one per part: server errors, kiosk,
printer, board) keyed ``[key] ja = "…" en = "…"`` — never in a view. This module is pure:
queue_server.loaders reads the table files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Japanese first, then the others we ship; "ja-easy" is やさしい日本語 (simple Japanese with kana).
LANGUAGES: tuple[str, ...] = ("ja", "en", "zh", "ko", "vi", "pt", "ja-easy")
LANGUAGE_NAMES: Mapping[str, str] = {
    "ja": "日本語",
    "ja-easy": "やさしい にほんご",
    "en": "English",
    "zh": "中文",
    "ko": "한국어",
    "vi": "Tiếng Việt",
    "pt": "Português",
}


def pick(texts: Mapping[str, str], lang: str) -> str:
    """The text for ``lang``; simple Japanese falls back to Japanese, anything else to English."""
    if lang in texts:
        return texts[lang]
    if lang == "ja-easy" and "ja" in texts:
        return texts["ja"]
    return texts.get("en") or texts.get("ja") or next(iter(texts.values()), "")


@dataclass(frozen=True)
class Messages:
    """A message table: ``table[key][lang]`` with ``str.format`` fields."""

    table: Mapping[str, Mapping[str, str]]
    source: str = "<memory>"

    def get(self, key: str, lang: str, /, **fields: object) -> str:
        try:
            texts = self.table[key]
        except KeyError:
            raise KeyError(f"{self.source}: no message {key!r}") from None
        return pick(texts, lang).format(**fields)

    def missing(self) -> list[str]:
        """Problems as 'key: missing lang' lines, for check-config and tests."""
        return [
            f"{self.source}: [{key}] has no {lang!r} text"
            for key, texts in self.table.items()
            for lang in LANGUAGES
            if lang not in texts
        ]
