"""Subtitles of talks (.srt, .vtt): cues merged into passages located by time."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from twincast_reasoning.corpus.chunking import (
    MAX_WORDS,
    MIN_WORDS,
    Chunk,
    own_location,
    parsed_source,
    split_long,
    word_count,
)
from twincast_reasoning.corpus.sources import ParsedSource, SourceError, SourceMeta

_TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?"
_CUE = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
_NOISE = re.compile(r"\[[^\]]*\]|\u266a|\u266b")
_PAUSE_S: Final = 3.0
_TALK_TARGET_WORDS: Final = 120


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    text: str


def _seconds(groups: Sequence[str | None]) -> float:
    hours, minutes, seconds, millis = groups
    return (
        int(hours or 0) * 3600
        + int(minutes or 0) * 60
        + int(seconds or 0)
        + int((millis or "0").ljust(3, "0")) / 1000
    )


def clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def parse_cues(text: str, *, vtt: bool) -> list[Cue]:
    """Cues in order: numbers, settings, styling tags and rolling-caption repeats removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = re.split(r"\n[ \t]*\n", text.strip())
    if vtt:
        if not blocks or not blocks[0].lstrip().startswith("WEBVTT"):
            raise SourceError("corrupt", "not a WebVTT file (no WEBVTT header)")
        _, _, rest = blocks[0].partition("\n")
        blocks = [rest, *blocks[1:]] if _CUE.search(rest) else blocks[1:]
    cues: list[Cue] = []
    last_line = ""
    for block in blocks:
        lines = block.split("\n")
        if vtt and lines[0].strip().split(" ")[0] in ("NOTE", "STYLE", "REGION"):
            continue
        timing = next((i for i, line in enumerate(lines) if _CUE.match(line)), None)
        if timing is None:
            continue
        match = _CUE.match(lines[timing])
        assert match is not None
        start, end = _seconds(match.groups()[:4]), _seconds(match.groups()[4:])
        kept: list[str] = []
        for line in lines[timing + 1 :]:
            line = " ".join(_NOISE.sub(" ", html.unescape(_TAG.sub("", line))).split())
            line = re.sub(r"^[-\u2013\u2014]\s*", "", line)
            if not line or line == last_line:
                continue
            kept.append(line)
            last_line = line
        if kept:
            cues.append(Cue(start, end, " ".join(kept)))
    return cues


def cue_chunks(cues: Sequence[Cue]) -> list[Chunk]:
    """Cues merged into passages: closed at a sentence end once long enough, or at a pause."""
    out: list[Chunk] = []
    current: list[Cue] = []

    def close() -> None:
        if current:
            at = f"at {clock(current[0].start)}"
            out.append(Chunk(None, 0, 0, " ".join(c.text for c in current), at))
            current.clear()

    for i, cue in enumerate(cues):
        count = sum(word_count(c.text) for c in current)
        if current and count + word_count(cue.text) > MAX_WORDS:
            close()
        current.append(cue)
        count = sum(word_count(c.text) for c in current)
        ends_sentence = bool(re.search(r"[.!?][\"'\u201d)]?$", cue.text))
        pause = i + 1 < len(cues) and cues[i + 1].start - cue.end >= _PAUSE_S
        if (count >= _TALK_TARGET_WORDS and ends_sentence) or (
            pause and count >= MIN_WORDS and ends_sentence
        ):
            close()
    close()
    if len(out) > 1 and out[-1].words < MIN_WORDS and out[-2].words + out[-1].words <= MAX_WORDS:
        tail = out.pop()
        out[-1].text = f"{out[-1].text} {tail.text}"
    final: list[Chunk] = []
    for c in out:
        final += [Chunk(None, 0, 0, piece, c.at) for piece in split_long(c.text)]
    return final


def parse_subtitles_source(rel: str, text: str, defaults: SourceMeta, *, vtt: bool) -> ParsedSource:
    cues = parse_cues(text, vtt=vtt)
    header = re.match(r"\ufeff?WEBVTT[ \t]+(?:-[ \t]*)?(\S[^\n]*)", text) if vtt else None
    if not cues:
        if re.search(r"\S", text.removeprefix("\ufeff").removeprefix("WEBVTT")):
            raise SourceError("corrupt", "no subtitle cues (HH:MM:SS --> HH:MM:SS) found")
        raise SourceError("empty", "no subtitle cues")
    title = header.group(1).strip() if header else None
    return parsed_source(
        rel, defaults, title, cue_chunks(cues), own_location, section_of_group=False
    )
