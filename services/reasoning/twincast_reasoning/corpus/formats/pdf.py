"""PDF: the paragraphs of each page's text layer, located by page; the document title.

Scanned pages without a text layer are not read (there is no OCR).
"""

from __future__ import annotations

import io
import re

from twincast_reasoning.corpus.chunking import Block, chunk, own_location, parsed_source
from twincast_reasoning.corpus.sources import ParsedSource, SourceError, SourceMeta

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
    return parsed_source(rel, meta, None, chunk(blocks), own_location, section_of_group=False)
