"""Incremental ingest: keep a twin's index in the store in step with its owner's corpus folder.

Source ids are paths relative to the corpus root (posix); a posts export adds `#<post id>`.
A file is unchanged when every source it gave has the same `sha256`, a fingerprint of
INGEST_FORMAT, the file's bytes and the `sources.toml` rule that applies to it: editing the
manifest re-indexes exactly the files it covers, moving INGEST_FORMAT (after a change to
parsing or chunking) re-indexes everything once, and sources written by other means (such as
`create_twin_from_folder`, with zero vectors) are re-indexed on the first run.
Unchanged files are not parsed; changed and new ones are parsed and embedded (a passage whose
text the source already had keeps its vector); sources whose files are gone from the scanned
part of the corpus are removed. Logs carry paths and counts, never the owner's text.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from twincast_reasoning.corpus.formats import MAX_SOURCE_BYTES, parse_bytes
from twincast_reasoning.corpus.manifest import MANIFEST, Manifest, ManifestRule, load_manifest
from twincast_reasoning.corpus.passages import EMBEDDING_FORMAT, CorpusError, embedding_text
from twincast_reasoning.corpus.sources import ParsedFile, ParsedSource, SourceError
from twincast_reasoning.retrieval.store import SourceRecord, TwinRepository
from twincast_shared.store import StateStore, key

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
"""Called after each file: (files done, files in this run, the file's path)."""

IGNORED_AT_ROOT = frozenset({MANIFEST, "twin.toml"})
INGEST_FORMAT = b"twincast-ingest/2"
POST_MARK = "#"


class Embeds(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class Skipped(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    reason: str
    detail: str = ""


class IngestResult(BaseModel):
    """Files (paths under the corpus root) by what happened to them in this run."""

    twin_id: str
    root: str
    added: list[str] = []
    updated: list[str] = []
    removed: list[str] = []
    unchanged: list[str] = []
    skipped: list[Skipped] = []
    passages: int = 0
    embedded: int = 0
    sources: int = 0
    version: int = 0


def file_of(source_id: str) -> str:
    """The corpus file a source came from: `posts.json#42` → `posts.json`."""
    head, mark, _ = source_id.partition(POST_MARK)
    return head if mark and head.lower().endswith(".json") else source_id


def fingerprint(data: bytes, rule: ManifestRule | None) -> str:
    digest = hashlib.sha256(INGEST_FORMAT + b"\0")
    digest.update(data)
    if rule is not None:
        digest.update(b"\0sources.toml\0")
        digest.update(json.dumps([rule.pattern, rule.explicit]).encode())
    return digest.hexdigest()


def _walk(folder: Path) -> Iterator[Path]:
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith((".", "~$")) and not name.endswith("~"):
                yield Path(current) / name


def _in_scope(rel: str, scopes: Sequence[str]) -> bool:
    return any(s == "" or rel == s or rel.startswith(f"{s}/") for s in scopes)


def scan(root: Path, paths: Sequence[Path] | None) -> tuple[list[str], dict[str, Path]]:
    """(the scanned parts of the corpus as relative paths, "" for all; the files found there)."""
    root = root.resolve()
    scopes: list[str] = []
    targets: list[Path] = []
    for path in [root] if paths is None else paths:
        full = (path if path.is_absolute() else root / path).resolve()
        try:
            rel = full.relative_to(root).as_posix()
        except ValueError:
            raise CorpusError(f"{path} is outside the corpus root {root}") from None
        scopes.append("" if rel == "." else rel)
        targets.append(full)
    files: dict[str, Path] = {}
    for target in targets:
        found = _walk(target) if target.is_dir() else iter([target] if target.is_file() else [])
        for file in found:
            rel = file.relative_to(root).as_posix()
            if rel not in IGNORED_AT_ROOT:
                files[rel] = file
    return scopes, dict(sorted(files.items()))


@dataclass(frozen=True, slots=True)
class _Loaded:
    sha: str = ""
    size: int = 0
    unchanged: bool = False
    parsed: ParsedFile | None = None
    skipped: Skipped | None = None


def _load(path: Path, rel: str, manifest: Manifest, before_shas: set[str]) -> _Loaded:
    """Hash the file; parse it unless every source it gave before has this hash."""
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise SourceError("too large", f"{size} bytes; the limit is {MAX_SOURCE_BYTES}")
        data = path.read_bytes()
        sha = fingerprint(data, manifest.rule_for(rel))
        if before_shas == {sha}:
            return _Loaded(sha, len(data), unchanged=True)
        return _Loaded(sha, len(data), parsed=parse_bytes(data, rel, manifest.meta_for(rel)))
    except SourceError as error:
        return _Loaded(skipped=Skipped(path=rel, reason=error.reason, detail=error.detail))
    except OSError as error:
        detail = error.strerror or type(error).__name__
        return _Loaded(skipped=Skipped(path=rel, reason="unreadable", detail=detail))
    except Exception as error:  # a parser bug on one odd file must not stop the others
        log.warning("ingest: %s failed to parse (%s)", rel, type(error).__name__)
        detail = f"{type(error).__name__} while reading"
        return _Loaded(skipped=Skipped(path=rel, reason="corrupt", detail=detail))


def _prepare(
    root: Path, paths: Sequence[Path] | None
) -> tuple[Path, Manifest, list[str], dict[str, Path]]:
    root = root.resolve()
    if not root.is_dir():
        raise CorpusError(f"corpus root {root} is not a folder")
    manifest = load_manifest(root)
    scopes, files = scan(root, paths)
    return root, manifest, scopes, files


async def ingest(
    repo: TwinRepository,
    embedder: Embeds,
    twin_id: str,
    root: Path,
    paths: Sequence[Path] | None = None,
    *,
    progress: Progress | None = None,
    force: bool = False,
) -> IngestResult:
    """Bring the twin's index in step with `root` (or only the given files and folders under
    it; relative paths are taken from `root`). A file that can't be read is reported in
    `skipped` and drops out of the index; it never stops the others. `force` re-indexes
    unchanged files too. Raises CorpusError only for a bad root, path or sources.toml."""
    root, manifest, scopes, files = await asyncio.to_thread(_prepare, root, paths)
    existing: dict[str, dict[str, SourceRecord]] = {}
    for source_id, record in (await repo.sources(twin_id)).items():
        existing.setdefault(file_of(source_id), {})[source_id] = record
    result = IngestResult(twin_id=twin_id, root=str(root))
    log.info("ingest %s: %d file(s) to check under %s", twin_id, len(files), root)
    for done, (rel, path) in enumerate(files.items(), 1):
        before = existing.get(rel, {})
        shas = set() if force or not before else {r.sha256 for r in before.values()}
        loaded = await asyncio.to_thread(_load, path, rel, manifest, shas)
        await _apply(repo, embedder, twin_id, rel, loaded, before, result)
        if progress is not None:
            progress(done, len(files), rel)
    for rel in sorted(set(existing) - set(files)):
        if _in_scope(rel, scopes):
            for source_id in existing[rel]:
                await repo.delete_source(twin_id, source_id)
            result.removed.append(rel)
            log.info("ingest %s: removed %s (file gone)", twin_id, rel)
    result.sources = len(await repo.sources(twin_id))
    result.version = await repo.version(twin_id)
    log.info(
        "ingest %s: %d added, %d updated, %d removed, %d unchanged, %d skipped; %d passages",
        twin_id,
        len(result.added),
        len(result.updated),
        len(result.removed),
        len(result.unchanged),
        len(result.skipped),
        result.passages,
    )
    return result


async def _apply(
    repo: TwinRepository,
    embedder: Embeds,
    twin_id: str,
    rel: str,
    loaded: _Loaded,
    before: dict[str, SourceRecord],
    result: IngestResult,
) -> None:
    if loaded.unchanged:
        result.unchanged.append(rel)
        return
    if loaded.skipped is not None:
        result.skipped.append(loaded.skipped)
        log.info("ingest %s: skipped %s (%s)", twin_id, rel, loaded.skipped.reason)
    written: set[str] = set()
    if loaded.parsed is not None:
        for problem in loaded.parsed.skipped:
            reason, _, detail = problem.reason.partition(": ")
            result.skipped.append(Skipped(path=problem.path, reason=reason, detail=detail))
        for source in loaded.parsed.sources:
            old = before.get(source.source_id)
            reuse = old is not None and old.embedding == EMBEDDING_FORMAT
            vectors, fresh = await _vectors(repo, embedder, twin_id, source, reuse=reuse)
            record = SourceRecord(
                source_id=source.source_id,
                title=source.title,
                date=source.date,
                origin=source.origin,
                scope=source.scope,
                sha256=loaded.sha,
                size=loaded.size,
                passages=len(source.passages),
                embedding=EMBEDDING_FORMAT,
            )
            await repo.put_source(twin_id, record, source.passages, vectors)
            written.add(source.source_id)
            result.passages += len(source.passages)
            result.embedded += fresh
    for source_id in sorted(set(before) - written):
        await repo.delete_source(twin_id, source_id)
    if written:
        (result.updated if before else result.added).append(rel)
        log.info("ingest %s: indexed %s (%d source(s))", twin_id, rel, len(written))
    elif before:
        result.removed.append(rel)
        log.info("ingest %s: removed %s (no longer readable)", twin_id, rel)


async def _vectors(
    repo: TwinRepository, embedder: Embeds, twin_id: str, source: ParsedSource, *, reuse: bool
) -> tuple[np.ndarray, int]:
    """The source's vectors, reusing those of passages it already had under the same heading
    with the same text, when they were made the way they are made now (`reuse`)."""
    source_id = source.source_id
    texts = [embedding_text(p) for p in source.passages]
    old = await repo.source_passages(twin_id, source_id) if reuse else []
    known: dict[str, np.ndarray] = {}
    if old:
        old_vectors = await repo.source_vectors(twin_id, source_id)
        if len(old_vectors) == len(old) and np.any(old_vectors):
            known = {
                embedding_text(p): v for p, v in zip(old, old_vectors, strict=True) if np.any(v)
            }
    missing = sorted({t for t in texts if t not in known})
    if missing:
        fresh = await asyncio.to_thread(embedder.embed, missing)
        known.update(zip(missing, fresh, strict=True))
    vectors = np.stack([known[t] for t in texts]).astype(np.float32)
    return vectors, len(missing)


class CorpusRoot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    root: str


async def get_corpus_root(store: StateStore, twin_id: str) -> Path | None:
    """Where the twin's corpus folder is, as the last `twin create`/`ingest --root` set it."""
    found = await store.get(key("twin", twin_id, "corpus"), CorpusRoot)
    return None if found is None else Path(found.root)


async def set_corpus_root(store: StateStore, twin_id: str, root: Path) -> None:
    """`root`: an absolute path."""
    if not root.is_absolute():
        raise ValueError(f"corpus root must be absolute: {root}")
    await store.put(key("twin", twin_id, "corpus"), CorpusRoot(root=str(root)))
