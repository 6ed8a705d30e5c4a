"""A twin folder as the sample twin is written: `twin.toml` and Markdown notes with front matter.

`load_corpus` reads one passage per paragraph, unchunked; an owner's own corpus goes through
`corpus.ingest` and `corpus.formats`, which share the front matter and block splitting here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from twincast_reasoning.corpus.passages import CorpusError, Passage, SkippedFile, check_scope
from twincast_shared.twins import TwinProfile

MAX_FILE_BYTES = 2 * 1024 * 1024
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def load_profile(twin_dir: Path) -> TwinProfile:
    path = twin_dir / "twin.toml"
    try:
        return TwinProfile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CorpusError(f"{path}: no twin.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CorpusError(f"{path}: not valid TOML: {error}") from None
    except ValidationError as error:
        raise CorpusError(f"{path}: {error.error_count()} invalid field(s)") from None


def split_front_matter(
    source_id: str, text: str, *, required: bool = True
) -> tuple[dict[str, str], str]:
    """The `---`-fenced `key: value` lines (keys lower-cased) and the text after them."""
    match = _FRONT.match(text)
    if match is None:
        if required:
            raise CorpusError(f"{source_id}: no front matter (--- title/date/origin/scope ---)")
        return {}, text
    meta: dict[str, str] = {}
    for line in match.group(1).splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise CorpusError(f"{source_id}: front matter line without ':': {line[:40]!r}")
        meta[name.strip().lower()] = value.strip()
    return meta, text[match.end() :]


def markdown_blocks(body: str) -> Iterator[tuple[str | None, str]]:
    """(section, block) for each blank-line-separated block; `# Heading` lines name sections."""
    section: str | None = None
    for block in re.split(r"\n\s*\n", body):
        block = block.strip()
        if not block:
            continue
        if block.startswith("#"):
            heading, _, rest = block.partition("\n")
            section = heading.lstrip("#").strip() or None
            block = rest.strip()
            if not block:
                continue
        yield section, block


def parse_markdown(source_id: str, text: str) -> list[Passage]:
    """Front matter (`key: value` lines) then paragraphs; `# Heading` lines name sections."""
    meta, body = split_front_matter(source_id, text)
    scope = check_scope(source_id, meta.get("scope", "private"))
    title = meta.get("title") or Path(source_id).stem.replace("-", " ")
    passages: list[Passage] = []
    for section, block in markdown_blocks(body):
        passages.append(
            Passage(
                source_id=source_id,
                title=title,
                date=meta.get("date"),
                origin=meta.get("origin"),
                scope=scope,
                section=section,
                paragraph=len(passages) + 1,
                text=" ".join(block.split()),
            )
        )
    return passages


def load_corpus(corpus_dir: Path) -> tuple[list[Passage], list[SkippedFile]]:
    """Every readable .md/.txt file under the folder; a bad file is reported, never fatal."""
    passages: list[Passage] = []
    skipped: list[SkippedFile] = []
    for path in sorted(corpus_dir.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(corpus_dir).as_posix()
        if path.suffix.lower() not in (".md", ".txt"):
            skipped.append(SkippedFile(path=rel, reason="unsupported type"))
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            skipped.append(SkippedFile(path=rel, reason="too large"))
            continue
        try:
            found = parse_markdown(rel, path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            skipped.append(SkippedFile(path=rel, reason="not UTF-8 text"))
            continue
        except CorpusError as error:
            skipped.append(SkippedFile(path=rel, reason=str(error)))
            continue
        if not found:
            skipped.append(SkippedFile(path=rel, reason="empty"))
            continue
        passages.extend(found)
    return passages, skipped
