"""Paragraphs into passages: long ones cut at sentences, short ones merged, each located.

Knows nothing of file formats: a format hands over numbered blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from twincast_reasoning.corpus.passages import Passage
from twincast_reasoning.corpus.sources import ParsedSource, SourceError, SourceMeta
from twincast_reasoning.words import sentences

MIN_WORDS: Final = 40
MAX_WORDS: Final = 220


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph as the format found it; blocks sharing `group` may be merged."""

    group: str | None
    number: int
    text: str
    at: str | None = None


def word_count(text: str) -> int:
    return len(text.split())


def split_long(text: str, *, max_words: int = MAX_WORDS) -> list[str]:
    """Balanced pieces of at most `max_words`, cut at sentence ends where there are any."""
    total = word_count(text)
    if total <= max_words:
        return [text]
    target = total / math.ceil(total / max_words)
    units: list[str] = []
    for sentence in sentences(text):
        words = sentence.split()
        units += [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)]
    pieces: list[str] = []
    current: list[str] = []
    count = 0
    for unit in units:
        n = word_count(unit)
        if current and (count >= target or count + n > max_words):
            pieces.append(" ".join(current))
            current, count = [], 0
        current.append(unit)
        count += n
    if current:
        pieces.append(" ".join(current))
    return pieces


@dataclass(slots=True)
class Chunk:
    group: str | None
    first: int
    last: int
    text: str
    at: str | None

    @property
    def words(self) -> int:
        return word_count(self.text)


def chunk(
    blocks: Iterable[Block], *, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS
) -> list[Chunk]:
    """Long blocks split at sentences; a short one grows with the blocks after it until it has
    `min_words`; a short tail of a group joins the chunk before it (same group only)."""
    out: list[Chunk] = []
    for block in blocks:
        text = " ".join(block.text.split())
        if not text:
            continue
        for piece in split_long(text, max_words=max_words):
            last = out[-1] if out else None
            if (
                last is not None
                and last.group == block.group
                and last.words < min_words
                and last.words + word_count(piece) <= max_words
            ):
                last.text = f"{last.text} {piece}"
                last.last = block.number
            else:
                out.append(Chunk(block.group, block.number, block.number, piece, block.at))
    merged: list[Chunk] = []
    for c in out:
        before = merged[-1] if merged else None
        if (
            before is not None
            and c.words < min_words
            and before.group == c.group
            and before.words + c.words <= max_words
        ):
            before.text = f"{before.text} {c.text}"
            before.last = c.last
        else:
            merged.append(c)
    return merged


def own_location(c: Chunk, _: int) -> str:
    return c.at or ""


def _paragraphs(first: int, last: int) -> str:
    return f"paragraph {first}" if first == last else f"paragraphs {first}\u2013{last}"


Locate = Callable[[Chunk, int], str]


def section_location(c: Chunk, n: int) -> str:
    return f"{c.group}, {_paragraphs(c.first, c.last)}" if c.group else _paragraphs(c.first, c.last)


def _passages(
    source_id: str,
    meta: SourceMeta,
    title: str,
    chunks: Sequence[Chunk],
    locate: Locate = section_location,
    *,
    section_of_group: bool = True,
) -> list[Passage]:
    return [
        Passage(
            source_id=source_id,
            title=title,
            date=meta.date,
            origin=meta.origin,
            scope=meta.scope,
            section=c.group if section_of_group else None,
            paragraph=n,
            text=c.text,
            location=locate(c, n),
        )
        for n, c in enumerate(chunks, 1)
    ]


def _title_from_name(rel: str) -> str:
    stem = Path(rel).stem
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or stem


def parsed_source(
    rel: str,
    meta: SourceMeta,
    fallback_title: str | None,
    chunks: Sequence[Chunk],
    locate: Locate = section_location,
    *,
    source_id: str | None = None,
    section_of_group: bool = True,
) -> ParsedSource:
    if not chunks:
        raise SourceError("empty", "no text found")
    sid = source_id or rel
    title = meta.title or fallback_title or _title_from_name(rel)
    return ParsedSource(
        source_id=sid,
        title=title,
        date=meta.date,
        origin=meta.origin,
        scope=meta.scope,
        passages=_passages(sid, meta, title, chunks, locate, section_of_group=section_of_group),
    )


def numbered(pairs: Iterable[tuple[str | None, str]]) -> list[Block]:
    """(section, paragraph) pairs numbered from 1 within each section."""
    blocks: list[Block] = []
    counts: dict[str | None, int] = {}
    previous: str | None = None
    for section, text in pairs:
        if section != previous:
            counts[section] = 0
            previous = section
        counts[section] = counts.get(section, 0) + 1
        blocks.append(Block(section, counts[section], text))
    return blocks
