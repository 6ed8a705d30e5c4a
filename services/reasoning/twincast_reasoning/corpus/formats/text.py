"""Markdown and plain text, with optional front matter."""

from __future__ import annotations

import html
import re

from twincast_reasoning.corpus.chunking import chunk, numbered, parsed_source
from twincast_reasoning.corpus.formats.common import front_matter, with_found
from twincast_reasoning.corpus.sources import ParsedSource, SourceMeta
from twincast_reasoning.corpus.twin_folder import markdown_blocks

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$", re.M)
_RULE = re.compile(r"^ {0,3}([-*_])( *\1){2,} *$", re.M)
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.M)
_INLINE = (
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_]+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"^ {0,3}>[ \t]?", re.M), ""),
    (re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+", re.M), ""),
    (re.compile(r"^\s*\||\|\s*$", re.M), ""),
    (re.compile(r"\s\|\s"), " "),
)


def markdown_text(block: str) -> str:
    for pattern, repl in _INLINE:
        block = pattern.sub(repl, block)
    return " ".join(html.unescape(block).split())


def _markdown_pairs(body: str) -> list[tuple[str | None, str]]:
    body = _COMMENT.sub("", _FENCE.sub("", body))
    body = _TABLE_SEP.sub("", _RULE.sub("", body))
    body = _ATX.sub(lambda m: f"\n\n# {markdown_text(m.group(2))}\n\n", body)
    pairs = [(section, markdown_text(block)) for section, block in markdown_blocks(body)]
    return [(section, text) for section, text in pairs if text]


def parse_markdown_source(rel: str, text: str, defaults: SourceMeta) -> ParsedSource:
    found, body = front_matter(rel, text)
    meta = with_found(rel, defaults, found)
    pairs = _markdown_pairs(body)
    first_heading = next(iter(_ATX.findall(body)), None)
    fallback = markdown_text(first_heading[1]) if first_heading else None
    return parsed_source(rel, meta, fallback, chunk(numbered(pairs)))


def parse_text_source(rel: str, text: str, defaults: SourceMeta) -> ParsedSource:
    found, body = front_matter(rel, text)
    meta = with_found(rel, defaults, found)
    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    return parsed_source(rel, meta, None, chunk(numbered((None, p) for p in paragraphs)))
