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

Knows nothing of the store: a file in, its sources out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from twincast_reasoning.corpus.formats.common import decode_text
from twincast_reasoning.corpus.formats.docx import parse_docx_source
from twincast_reasoning.corpus.formats.html import parse_html_source
from twincast_reasoning.corpus.formats.pdf import parse_pdf_source
from twincast_reasoning.corpus.formats.posts import parse_posts
from twincast_reasoning.corpus.formats.subtitles import parse_subtitles_source
from twincast_reasoning.corpus.formats.text import parse_markdown_source, parse_text_source
from twincast_reasoning.corpus.sources import ParsedFile, SourceError, SourceMeta

MAX_SOURCE_BYTES: Final = 20 * 1024 * 1024
SUFFIXES: Final = frozenset(
    {".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx", ".srt", ".vtt", ".json"}
)


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
