"""DOCX: paragraphs under their headings, table rows as paragraphs; the document title."""

from __future__ import annotations

import io

from twincast_reasoning.corpus.chunking import chunk, numbered, parsed_source
from twincast_reasoning.corpus.sources import ParsedSource, SourceError, SourceMeta


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
    return parsed_source(rel, meta, doc_title, chunk(numbered(pairs)))
