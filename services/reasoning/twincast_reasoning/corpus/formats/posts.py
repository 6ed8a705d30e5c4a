"""JSON post exports: every post a source of its own, `<file>#<post id>`."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from twincast_reasoning.corpus.chunking import Block, Chunk, Locate, chunk, parsed_source
from twincast_reasoning.corpus.formats.common import normal_date, with_found
from twincast_reasoning.corpus.formats.html import html_pairs
from twincast_reasoning.corpus.passages import SkippedFile
from twincast_reasoning.corpus.sources import ParsedFile, ParsedSource, SourceError, SourceMeta
from twincast_reasoning.words import sentences

_POST_TEXT: Final = ("text", "content", "body")
_POST_DATE: Final = ("date", "created_at", "published", "published_at")


def _field(post: dict[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        value = post.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise SourceError("invalid", f"{name!r} must be a string")
        if value.strip():
            return value
    return None


def _post_text(raw: str) -> list[str]:
    if re.search(r"<(p|br|div|span|a)\b", raw, re.I):
        return [text for _, text in html_pairs(raw).pairs]
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", raw) if p.strip()]


def _short_title(paragraphs: Sequence[str], words: int = 8) -> str:
    first = sentences(paragraphs[0])[0] if paragraphs else ""
    parts = first.split()
    return " ".join(parts[:words]) + ("\u2026" if len(parts) > words else "")


def parse_posts(rel: str, text: str, defaults: SourceMeta) -> ParsedFile:
    """`[post, …]` or `{"posts": [post, …], "origin"?, "scope"?, "date"?}`; a post is
    `{"id"?, "date"|"created_at"|"published"?, "title"?, "text"|"content"|"body", "url"?,
    "origin"?, "scope"?}` (HTML content is reduced to text). Each post is a source `rel#id`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(
            "corrupt", f"not valid JSON: {error.msg} at line {error.lineno}"
        ) from None
    file_meta = defaults
    if isinstance(data, dict):
        if not isinstance(data.get("posts"), list):
            raise SourceError("invalid", 'expected a list of posts or {"posts": [...]}')
        top = {k: data[k] for k in ("origin", "scope", "date") if isinstance(data.get(k), str)}
        file_meta = with_found(rel, defaults, {**top, "date": normal_date(top.get("date")) or ""})
        posts: list[Any] = data["posts"]
    elif isinstance(data, list):
        posts = data
    else:
        raise SourceError("invalid", 'expected a list of posts or {"posts": [...]}')
    if not posts:
        raise SourceError("empty", "no posts")
    sources: list[ParsedSource] = []
    skipped: list[SkippedFile] = []
    seen: set[str] = set()
    for n, post in enumerate(posts, 1):
        raw_id = post.get("id") if isinstance(post, dict) else None
        post_id = str(raw_id) if isinstance(raw_id, str | int) and str(raw_id).strip() else str(n)
        source_id = f"{rel}#{post_id}"
        try:
            if not isinstance(post, dict):
                raise SourceError("invalid", "a post must be a JSON object")
            if post_id in seen:
                raise SourceError("invalid", f"duplicate post id {post_id!r}")
            seen.add(post_id)
            raw = _field(post, _POST_TEXT)
            paragraphs = _post_text(raw) if raw else []
            if not paragraphs:
                raise SourceError("empty", "post has no text")
            url = _field(post, ("url",))
            meta = with_found(
                rel,
                file_meta,
                {
                    "title": _field(post, ("title",)) or "",
                    "date": normal_date(_field(post, _POST_DATE)) or "",
                    "origin": _field(post, ("origin",)) or "",
                    "scope": _field(post, ("scope",)) or "",
                },
            )
            if meta.origin is None and url:
                meta = replace(meta, origin=url)
            chunks = chunk(Block(None, i, p) for i, p in enumerate(paragraphs, 1))
            many = len(chunks) > 1
            sources.append(
                parsed_source(
                    rel,
                    meta,
                    _short_title(paragraphs),
                    chunks,
                    _post_locator(post_id, many=many),
                    source_id=source_id,
                    section_of_group=False,
                )
            )
        except SourceError as error:
            skipped.append(SkippedFile(path=source_id, reason=f"{error.reason}: {error.detail}"))
    if not sources and not skipped:
        raise SourceError("empty", "no posts")
    return ParsedFile(rel, sources, skipped)


def _post_locator(post_id: str, *, many: bool) -> Locate:
    def locate(_: Chunk, n: int) -> str:
        return f"post {post_id}, part {n}" if many else f"post {post_id}"

    return locate
