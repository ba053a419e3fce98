"""Checks for やさしい日本語 (ja-easy) text, after the national guideline
(在留支援のためのやさしい日本語ガイドライン, 2020): key terms keep their kanji *with* a reading,
sentences stay short. Used by the catalogue's validation (check-config). Pure: no I/O.

- Every kanji must sit inside ruby markup ``{市民課|しみんか}`` (queue_server.core.ruby), so a reader
  who cannot read it still can; kanji outside markup is reported.
- A sentence (split at 。！？ and line ends) longer than ``MAX_SENTENCE`` characters, counted on
  the plain text without spaces, is reported; ``TARGET_SENTENCE`` is the guideline's aim.
"""

from __future__ import annotations

import re

from queue_server.core import ruby

TARGET_SENTENCE = 30  # the guideline's aim ("about 30 characters or fewer")
MAX_SENTENCE = 35  # longer than this is an error in check-config

_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]")
_SENTENCE_END = re.compile(r"[。！？!?\n]")


def kanji_without_reading(text: str) -> list[str]:
    """The runs of kanji in ``text`` that are not inside ruby markup (empty when all are read)."""
    out: list[str] = []
    for base, reading in ruby.segments(text):
        if reading is None:
            out += re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]+", base)
    return out


def sentences(text: str) -> list[str]:
    """The sentences of the plain text (ruby bases only), without spaces, empty ones dropped."""
    plain = ruby.plain(text)
    return [s for s in (re.sub(r"[\s\u3000]", "", part) for part in _SENTENCE_END.split(plain)) if s]


def long_sentences(text: str, limit: int = MAX_SENTENCE) -> list[str]:
    """Sentences of ``text`` longer than ``limit`` characters."""
    return [s for s in sentences(text) if len(s) > limit]


def has_kanji(text: str) -> bool:
    return bool(_KANJI.search(text))


def marked_terms(text: str) -> list[str]:
    """The ruby-marked terms of ``text`` that hold kanji (``{市民課|しみんか}`` → ``市民課``).

    A procedure name in やさしい日本語 needs at least one: the guideline keeps the key term in
    kanji with its reading so that the name matches the signs and forms at the counter.
    """
    return [base for base, reading in ruby.segments(text) if reading is not None and has_kanji(base)]


def _hiragana(katakana: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in katakana)


def propose_ruby(text: str) -> str:
    """``text`` with each run of kanji words marked ``{漢字|かんじ}``, readings from pyopenjtalk.

    A proposal for a person to review (the dictionary reads 届 as とどけ, not とどけで), never
    written into the catalogue unchecked. Imports pyopenjtalk lazily: it loads a dictionary.
    """
    import pyopenjtalk  # noqa: PLC0415 - heavy, only for this helper

    out: list[str] = []
    base, reading = "", ""
    for token in pyopenjtalk.run_frontend(text):
        word, read = token["string"], _hiragana(token["read"])
        if has_kanji(word) and read and read != "、":
            base, reading = base + word, reading + read
            continue
        if base:
            out.append(f"{{{base}|{reading}}}")
            base, reading = "", ""
        out.append(word)
    if base:
        out.append(f"{{{base}|{reading}}}")
    return "".join(out)
