"""The owner's files read into sources: metadata and paragraph-sized passages of their words.

Formats (by extension): .md/.markdown, .txt, .html/.htm, .pdf, .docx, .srt, .vtt, .json (a
posts export: every post is a source of its own, `<file>#<post id>`).

Metadata, strongest first:
1. the file's own: Markdown/text front matter (`---` / `key: value` lines / `---`), HTML
   `<title>` and `<meta name="date|scope|origin" content="…">`, PDF/DOCX document title,
   JSON post fields, then the JSON export's top-level fields;
2. the first `[[source]]` rule of the corpus's `sources.toml` whose `path` pattern matches;
3. defaults: scope private, title from the first heading or the file name, no date.
Dates embedded by PDF and DOCX tools are not used: templates carry them.
"""

from __future__ import annotations

import codecs
import html
import io
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date as Date
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final, Literal

from twincast_reasoning.corpus import (
    CorpusError,
    Passage,
    SkippedFile,
    check_scope,
    markdown_blocks,
    split_front_matter,
)
from twincast_reasoning.engine import sentences
from twincast_shared.contract.events import Scope

MAX_SOURCE_BYTES: Final = 20 * 1024 * 1024
MIN_WORDS: Final = 40
MAX_WORDS: Final = 220
MANIFEST: Final = "sources.toml"
SUFFIXES: Final = frozenset(
    {".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx", ".srt", ".vtt", ".json"}
)

SkipReason = Literal["unsupported", "too large", "empty", "corrupt", "invalid", "unreadable"]


class SourceError(CorpusError):
    """Why a file (or one post of an export) cannot be indexed: a reason kind and a detail."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: SkipReason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SourceMeta:
    title: str | None = None
    date: str | None = None
    origin: str | None = None
    scope: Scope = "private"

    def over(
        self, *, title: str | None = None, date: str | None = None, origin: str | None = None
    ) -> SourceMeta:
        """These defaults overridden by whatever the file itself says (None or "": nothing)."""
        return SourceMeta(
            title=title or self.title,
            date=date or self.date,
            origin=origin or self.origin,
            scope=self.scope,
        )


@dataclass(frozen=True, slots=True)
class ParsedSource:
    source_id: str
    title: str
    date: str | None
    origin: str | None
    scope: Scope
    passages: list[Passage]


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """One file's sources (one, or one per post of an export) and the posts it had to skip."""

    rel: str
    sources: list[ParsedSource]
    skipped: list[SkippedFile] = field(default_factory=list)


# ---------------------------------------------------------------- manifest


@dataclass(frozen=True, slots=True)
class ManifestRule:
    pattern: str
    meta: SourceMeta
    explicit: tuple[tuple[str, str], ...]
    regex: re.Pattern[str]

    def matches(self, rel: str) -> bool:
        return bool(self.regex.fullmatch(rel))


def glob_regex(pattern: str) -> re.Pattern[str]:
    """`*` and `?` stay inside one folder, `**` spans folders; a folder matches what is under it."""
    pattern = pattern.strip().removeprefix("./").rstrip("/")
    pattern = "" if pattern == "." else pattern
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    return re.compile(f"{body}(?:/.*)?" if body else ".*")


@dataclass(frozen=True, slots=True)
class Manifest:
    rules: tuple[ManifestRule, ...] = ()

    def rule_for(self, rel: str) -> ManifestRule | None:
        return next((rule for rule in self.rules if rule.matches(rel)), None)

    def meta_for(self, rel: str) -> SourceMeta:
        rule = self.rule_for(rel)
        return SourceMeta() if rule is None else rule.meta


_RULE_KEYS: Final = frozenset({"path", "title", "date", "origin", "scope"})


def _text_value(where: str, name: str, value: object) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, Date):
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise CorpusError(f"{where}: {name} must be a non-empty string")


def parse_manifest(text: str, *, where: str = MANIFEST) -> Manifest:
    """`[[source]]` tables with `path` (a glob) and any of title, date, origin, scope."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CorpusError(f"{where}: not valid TOML: {error}") from None
    extra = set(data) - {"source"}
    if extra:
        raise CorpusError(f"{where}: unknown table(s) {sorted(extra)}; expected [[source]]")
    entries = data.get("source", [])
    if not isinstance(entries, list):
        raise CorpusError(f"{where}: write rules as [[source]] tables")
    rules = []
    for n, entry in enumerate(entries, 1):
        at = f"{where}: [[source]] #{n}"
        if not isinstance(entry, dict):
            raise CorpusError(f"{at}: not a table")
        unknown = set(entry) - _RULE_KEYS
        if unknown:
            raise CorpusError(f"{at}: unknown key(s) {sorted(unknown)}")
        if "path" not in entry:
            raise CorpusError(f"{at}: no path pattern")
        values = {k: _text_value(at, k, v) for k, v in entry.items()}
        pattern = values.pop("path")
        scope = check_scope(at, values.pop("scope", "private"))
        rules.append(
            ManifestRule(
                pattern=pattern,
                meta=SourceMeta(scope=scope, **values),
                explicit=tuple(sorted({**values, "scope": scope}.items())),
                regex=glob_regex(pattern),
            )
        )
    return Manifest(tuple(rules))


def load_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Manifest()
    except (OSError, UnicodeDecodeError) as error:
        raise CorpusError(f"{path}: unreadable: {error}") from None
    return parse_manifest(text, where=str(path))


# ---------------------------------------------------------------- chunking


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph as the format found it; blocks sharing `group` may be merged."""

    group: str | None
    number: int
    text: str
    at: str | None = None


def _words(text: str) -> int:
    return len(text.split())


def split_long(text: str, *, max_words: int = MAX_WORDS) -> list[str]:
    """Balanced pieces of at most `max_words`, cut at sentence ends where there are any."""
    total = _words(text)
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
        n = _words(unit)
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
        return _words(self.text)


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
                and last.words + _words(piece) <= max_words
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


def _at(c: Chunk, _: int) -> str:
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


def _source(
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


# ---------------------------------------------------------------- text decoding


def decode_text(data: bytes, *, fallback: str | None = None) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise SourceError("corrupt", "broken UTF-16 text") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if fallback:
        try:
            return data.decode(fallback)
        except (UnicodeDecodeError, LookupError):
            pass
    raise SourceError("unreadable", "not UTF-8 text")


def _front(rel: str, text: str) -> tuple[dict[str, str], str]:
    try:
        meta, body = split_front_matter(rel, text.replace("\r\n", "\n"), required=False)
    except CorpusError as error:
        raise SourceError("invalid", str(error).removeprefix(f"{rel}: ")) from None
    return meta, body


def _scope(rel: str, value: str | None) -> Scope | None:
    if not value:
        return None
    try:
        return check_scope(rel, value.strip().lower())
    except CorpusError:
        raise SourceError(
            "invalid", f"scope {value!r} is not public, colleagues or private"
        ) from None


def _with_front(rel: str, defaults: SourceMeta, found: dict[str, str]) -> SourceMeta:
    meta = defaults.over(
        title=found.get("title"), date=found.get("date"), origin=found.get("origin")
    )
    scope = _scope(rel, found.get("scope"))
    return replace(meta, scope=scope) if scope else meta


# ---------------------------------------------------------------- Markdown and text

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
    found, body = _front(rel, text)
    meta = _with_front(rel, defaults, found)
    pairs = _markdown_pairs(body)
    first_heading = next(iter(_ATX.findall(body)), None)
    fallback = markdown_text(first_heading[1]) if first_heading else None
    return _source(rel, meta, fallback, chunk(numbered(pairs)))


def parse_text_source(rel: str, text: str, defaults: SourceMeta) -> ParsedSource:
    found, body = _front(rel, text)
    meta = _with_front(rel, defaults, found)
    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    return _source(rel, meta, None, chunk(numbered((None, p) for p in paragraphs)))


# ---------------------------------------------------------------- HTML

_HTML_SKIP: Final = frozenset(
    {"script", "style", "noscript", "template", "svg", "nav", "footer", "aside", "form",
     "button", "select", "iframe", "object", "canvas", "math"}
)  # fmt: skip
_HTML_BLOCK: Final = frozenset(
    {"p", "div", "li", "ul", "ol", "dl", "dd", "dt", "blockquote", "pre", "section", "article",
     "main", "header", "table", "tr", "td", "th", "caption", "figure", "figcaption", "hr",
     "address", "details", "summary", "body", "html", "center"}
)  # fmt: skip
_HEADINGS: Final = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_VOID: Final = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"}
)  # fmt: skip
_META_NAMES: Final = {
    "date": "date",
    "dc.date": "date",
    "dcterms.date": "date",
    "article:published_time": "date",
    "scope": "scope",
    "origin": "origin",
    "title": "title",
}


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self.meta: dict[str, str] = {}
        self.first_h1: str | None = None
        self.pairs: list[tuple[str | None, str]] = []
        self._skip = 0
        self._in_title = False
        self._heading: list[str] | None = None
        self._heading_tag = ""
        self._section: str | None = None
        self._text: list[str] = []
        self._title_text: list[str] = []

    def _flush(self) -> None:
        text = "".join(self._text)
        self._text = []
        for paragraph in re.split(r"\n\s*\n", text):
            paragraph = " ".join(paragraph.split())
            if paragraph:
                self.pairs.append((self._section, paragraph))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_SKIP:
            if tag not in _VOID:
                self._skip += 1
            return
        if self._skip:
            return
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            values = {k.lower(): (v or "") for k, v in attrs}
            name = (values.get("name") or values.get("property") or "").lower()
            field_name = _META_NAMES.get(name)
            content = values.get("content", "").strip()
            if field_name and content and field_name not in self.meta:
                self.meta[field_name] = content
        elif tag in _HEADINGS:
            self._flush()
            self._heading = []
            self._heading_tag = tag
        elif tag == "br":
            (self._heading if self._heading is not None else self._text).append("\n")
        elif tag in _HTML_BLOCK:
            self._flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_SKIP:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "title":
            self._in_title = False
            self.title = " ".join("".join(self._title_text).split()) or None
        elif tag in _HEADINGS and self._heading is not None:
            heading = " ".join("".join(self._heading).split()) or None
            if heading and tag == "h1" and self.first_h1 is None:
                self.first_h1 = heading
            self._section = heading
            self._heading = None
        elif tag in _HTML_BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self._title_text.append(data)
        elif self._heading is not None:
            self._heading.append(data)
        else:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_pairs(text: str) -> _HtmlText:
    parser = _HtmlText()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError) as error:
        raise SourceError("corrupt", f"HTML the parser cannot read: {error}") from None
    return parser


def _normal_date(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value[:10] if re.match(r"\d{4}-\d{2}-\d{2}[T ]\d", value) else value


def parse_html_source(rel: str, data: bytes, defaults: SourceMeta) -> ParsedSource:
    declared = re.search(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", data[:4096])
    text = decode_text(data, fallback=declared.group(1).decode() if declared else None)
    parsed = html_pairs(text)
    found = dict(parsed.meta)
    if parsed.title:
        found["title"] = parsed.title
    found["date"] = _normal_date(found.get("date")) or ""
    meta = _with_front(rel, defaults, found)
    return _source(rel, meta, parsed.first_h1, chunk(numbered(parsed.pairs)))


# ---------------------------------------------------------------- PDF

_HYPHEN = re.compile(r"(\w)-\n(?=[a-z])")


def pdf_paragraphs(page_text: str) -> list[str]:
    """A page's text in paragraphs: blank lines, or a short line that ends a sentence."""
    text = _HYPHEN.sub(r"\1", page_text.replace("\r\n", "\n"))
    lines = [line.strip() for line in text.split("\n")]
    lengths = sorted(len(line) for line in lines if line)
    if not lengths:
        return []
    typical = lengths[len(lengths) // 2]
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if re.fullmatch(r"\d{1,4}", line):
            continue
        if not line:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line)
        if len(line) < 0.7 * typical and re.search(r"[.!?:\"\u201d]$", line):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def parse_pdf_source(rel: str, data: bytes, defaults: SourceMeta) -> ParsedSource:
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError("unreadable", "encrypted PDF")
        pages = list(reader.pages)
    except SourceError:
        raise
    except Exception as error:  # pypdf raises many kinds on damaged files
        raise SourceError("corrupt", f"not a readable PDF ({type(error).__name__})") from None
    title: str | None = None
    try:
        if reader.metadata is not None and reader.metadata.title:
            title = str(reader.metadata.title).strip() or None
    except Exception:  # broken metadata is not worth losing the text for
        title = None
    blocks: list[Block] = []
    failed = 0
    for number, page in enumerate(pages, 1):
        try:
            page_text = page.extract_text() or ""
        except Exception:  # one broken page must not lose the others
            failed += 1
            continue
        where = f"page {number}"
        blocks += [Block(where, n, p, where) for n, p in enumerate(pdf_paragraphs(page_text), 1)]
    if not blocks and failed:
        raise SourceError("corrupt", f"text of {failed} page(s) could not be read")
    if not blocks:
        raise SourceError("empty", "no text layer (a scanned PDF needs OCR first)")
    meta = defaults.over(title=title)
    return _source(rel, meta, None, chunk(blocks), _at, section_of_group=False)


# ---------------------------------------------------------------- DOCX


def parse_docx_source(rel: str, data: bytes, defaults: SourceMeta) -> ParsedSource:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        items = list(document.iter_inner_content())
        core_title = (document.core_properties.title or "").strip() or None
    except Exception as error:  # python-docx raises many kinds on bad files
        raise SourceError("corrupt", f"not a readable DOCX ({type(error).__name__})") from None
    pairs: list[tuple[str | None, str]] = []
    section: str | None = None
    doc_title: str | None = None
    for item in items:
        if hasattr(item, "rows"):
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = " ".join(cell.text.split())
                    if text and text not in cells:
                        cells.append(text)
                if cells:
                    pairs.append((section, " ".join(cells)))
            continue
        text = " ".join(item.text.split())
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        if style == "Title":
            doc_title = doc_title or text
        elif style.startswith("Heading"):
            section = text
        else:
            pairs.append((section, text))
    meta = defaults.over(title=core_title)
    return _source(rel, meta, doc_title, chunk(numbered(pairs)))


# ---------------------------------------------------------------- subtitles (talks)

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
        count = sum(_words(c.text) for c in current)
        if current and count + _words(cue.text) > MAX_WORDS:
            close()
        current.append(cue)
        count = sum(_words(c.text) for c in current)
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
    return _source(rel, defaults, title, cue_chunks(cues), _at, section_of_group=False)


# ---------------------------------------------------------------- JSON posts

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
        file_meta = _with_front(rel, defaults, {**top, "date": _normal_date(top.get("date")) or ""})
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
            meta = _with_front(
                rel,
                file_meta,
                {
                    "title": _field(post, ("title",)) or "",
                    "date": _normal_date(_field(post, _POST_DATE)) or "",
                    "origin": _field(post, ("origin",)) or "",
                    "scope": _field(post, ("scope",)) or "",
                },
            )
            if meta.origin is None and url:
                meta = replace(meta, origin=url)
            chunks = chunk(Block(None, i, p) for i, p in enumerate(paragraphs, 1))
            many = len(chunks) > 1
            sources.append(
                _source(
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


# ---------------------------------------------------------------- entry points


def parse_bytes(data: bytes, rel: str, defaults: SourceMeta) -> ParsedFile:
    """One file's content into its sources; raises SourceError (a CorpusError) if it can't."""
    suffix = Path(rel).suffix.lower()
    if suffix not in SUFFIXES:
        raise SourceError("unsupported", f"{suffix or 'no extension'} files are not read")
    if len(data) > MAX_SOURCE_BYTES:
        raise SourceError("too large", f"{len(data)} bytes; the limit is {MAX_SOURCE_BYTES}")
    if not data.strip():
        raise SourceError("empty", "the file is empty")
    if suffix == ".pdf":
        return ParsedFile(rel, [parse_pdf_source(rel, data, defaults)])
    if suffix == ".docx":
        return ParsedFile(rel, [parse_docx_source(rel, data, defaults)])
    if suffix in (".html", ".htm"):
        return ParsedFile(rel, [parse_html_source(rel, data, defaults)])
    text = decode_text(data)
    if suffix in (".md", ".markdown"):
        return ParsedFile(rel, [parse_markdown_source(rel, text, defaults)])
    if suffix == ".txt":
        return ParsedFile(rel, [parse_text_source(rel, text, defaults)])
    if suffix in (".srt", ".vtt"):
        return ParsedFile(rel, [parse_subtitles_source(rel, text, defaults, vtt=suffix == ".vtt")])
    return parse_posts(rel, text, defaults)


def parse(path: Path, rel: str, defaults: SourceMeta) -> ParsedFile:
    """Read and parse one file; `rel` (its path under the corpus root) becomes its source id."""
    if Path(rel).suffix.lower() not in SUFFIXES:
        raise SourceError("unsupported", f"{Path(rel).suffix or 'no extension'} files are not read")
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise SourceError("too large", f"{size} bytes; the limit is {MAX_SOURCE_BYTES}")
        data = path.read_bytes()
    except OSError as error:
        raise SourceError("unreadable", error.strerror or type(error).__name__) from None
    return parse_bytes(data, rel, defaults)
