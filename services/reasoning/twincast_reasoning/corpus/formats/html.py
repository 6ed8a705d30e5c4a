"""HTML: `<title>`, `<meta>` date/scope/origin, headings as sections; page chrome skipped."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Final

from twincast_reasoning.corpus.chunking import chunk, numbered, parsed_source
from twincast_reasoning.corpus.formats.common import decode_text, normal_date, with_found
from twincast_reasoning.corpus.sources import ParsedSource, SourceError, SourceMeta

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


def parse_html_source(rel: str, data: bytes, defaults: SourceMeta) -> ParsedSource:
    declared = re.search(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", data[:4096])
    text = decode_text(data, fallback=declared.group(1).decode() if declared else None)
    parsed = html_pairs(text)
    found = dict(parsed.meta)
    if parsed.title:
        found["title"] = parsed.title
    found["date"] = normal_date(found.get("date")) or ""
    meta = with_found(rel, defaults, found)
    return parsed_source(rel, meta, parsed.first_h1, chunk(numbered(parsed.pairs)))
