"""Reply text to speakable pieces: sentences, and long sentences cut at clause punctuation.

Piper's time to the first sample grows with the length of what it is given, so the first piece
of a reply is kept short; later pieces are synthesized while earlier ones play and may be longer.
"""

from __future__ import annotations

import re
from typing import Final

FIRST_PIECE_CHARS: Final = 30
PIECE_CHARS: Final = 120
MIN_WORDS: Final = 2

# Abbreviations whose full stop never ends a sentence.
_ABBREVIATIONS: Final = frozenset(
    {
        *("mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "cf", "approx", "dept"),
        *("inc", "ltd", "co", "corp", "mt", "ft", "sgt", "capt", "gen", "col", "lt", "rev"),
        *("hon", "est", "ca", "al", "fig", "figs", "eq", "vol", "pp", "ed", "eds", "ave"),
        *("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
    }
)
# ... and those that are abbreviations only before a number ("No. 5", "p. 12").
_BEFORE_NUMBER: Final = frozenset({"no", "nos", "p", "vs"})

EN_DASH: Final = "\u2013"
EM_DASH: Final = "\u2014"
# Closing quotes and brackets after a terminator; opening ones before a word.
_CLOSERS: Final = "\"')]\u2019\u201d"
_OPENERS: Final = "\"'([\u2018\u201c"

_SENTENCE_END: Final = re.compile(rf"[.!?\u2026]+[{re.escape(_CLOSERS)}]*(?=\s)")
# `,;:` only before a space (so "5,214" and "3:30" stay whole); dashes spaced or not (but see
# _is_range); a hyphen only when spaced (" - ").
_CLAUSE_END: Final = re.compile(rf"[,;:](?=\s)|\s*[{EM_DASH}{EN_DASH}]\s*|\s+--?(?=\s)")
_WORD: Final = re.compile(r"[\w'\u2019]+")


def words(text: str) -> int:
    return len(_WORD.findall(text))


def split_speech(
    text: str,
    *,
    first: bool = False,
    first_chars: int = FIRST_PIECE_CHARS,
    max_chars: int = PIECE_CHARS,
) -> list[str]:
    """Pieces to synthesize one by one, in order; `first` when the text opens a reply."""
    pieces: list[str] = []
    for i, sentence in enumerate(sentences(text)):
        budget = first_chars if first and i == 0 else max_chars
        pieces.extend(_pack(clauses(sentence), first_budget=budget, max_chars=max_chars))
    return pieces


def sentences(text: str) -> list[str]:
    text = " ".join(text.split())
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if _continues(text, match):
            continue
        out.append(text[start : match.end()].strip())
        start = match.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def clauses(sentence: str) -> list[str]:
    out: list[str] = []
    start = 0
    for match in _CLAUSE_END.finditer(sentence):
        if match.end() == len(sentence):
            break
        if _is_range(sentence, match):
            continue
        out.append(sentence[start : match.end()].strip())
        start = match.end()
    out.append(sentence[start:].strip())
    return [c for c in out if c]


def _continues(text: str, match: re.Match[str]) -> bool:
    """Whether the sentence goes on after this terminator."""
    after = text[match.end() :].lstrip()
    if not after:
        return False
    if after[0].islower():
        return True
    if match.group() != ".":
        return False
    before = text[: match.start()].split(" ")[-1].lstrip(_OPENERS).lower()
    return (
        before in _ABBREVIATIONS
        or (before in _BEFORE_NUMBER and after[0].isdigit())
        or (len(before) == 1 and before.isalpha())  # an initial: "J. Hale"
        or "." in before  # "e.g.", "U.S.", "a.m."
    )


def _is_range(sentence: str, match: re.Match[str]) -> bool:
    """An en dash between numbers, as in a range of years."""
    before, after = sentence[: match.start()].rstrip(), sentence[match.end() :].lstrip()
    return EN_DASH in match.group() and before[-1:].isdigit() and after[:1].isdigit()


def _pack(parts: list[str], *, first_budget: int, max_chars: int) -> list[str]:
    """Join clauses into pieces within their budget; never a piece of fewer than MIN_WORDS."""
    pieces: list[str] = []
    current = ""
    for part in parts:
        budget = first_budget if not pieces else max_chars
        joined = f"{current} {part}" if current else part
        if current and words(current) >= MIN_WORDS and len(joined) > budget:
            pieces.append(current)
            current = part
        else:
            current = joined
    if current:
        if pieces and words(current) < MIN_WORDS:
            pieces[-1] = f"{pieces[-1]} {current}"
        else:
            pieces.append(current)
    return pieces
