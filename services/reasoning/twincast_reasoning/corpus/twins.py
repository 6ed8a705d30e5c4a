"""Twins made from their owners' folders: the profile, the corpus root on record, the index.

`create_twin` and `ingest_twin` are what `twincast twin create|ingest` do; a twin folder in the
sample twin's format can also be stored as it is (`create_twin_from_folder`), which is how
`twincast up` seeds the sample twin. Knows nothing of the bus or of the CLI's wording.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from twincast_reasoning.corpus.ingest import Embeds, IngestResult, Progress, ingest, set_corpus_root
from twincast_reasoning.corpus.manifest import load_manifest
from twincast_reasoning.corpus.passages import (
    EMBEDDING_FORMAT,
    Passage,
    SkippedFile,
    embedding_text,
)
from twincast_reasoning.corpus.twin_folder import load_corpus, load_profile
from twincast_reasoning.retrieval.embeddings import DIM
from twincast_reasoning.retrieval.store import SourceRecord, TwinRepository, UnknownTwin
from twincast_shared.store import StateStore
from twincast_shared.twins import TwinProfile


class TwinExists(Exception):
    pass


async def create_twin(
    store: StateStore, profile: TwinProfile, root: Path, *, replace: bool = False
) -> None:
    """Store the profile of a new twin whose corpus is under `root` (`ingest_twin` indexes it).
    Raises CorpusError for a bad `sources.toml`, TwinExists unless `replace`."""
    await asyncio.to_thread(load_manifest, root)
    repo = TwinRepository(store)
    if await repo.profile(profile.id) is not None and not replace:
        raise TwinExists(profile.id)
    await repo.put_profile(profile)


async def ingest_twin(
    store: StateStore,
    embedder: Embeds,
    twin_id: str,
    root: Path,
    paths: Sequence[Path] | None = None,
    *,
    progress: Progress | None = None,
    force: bool = False,
) -> IngestResult:
    """Record `root` (absolute) as the twin's corpus and bring its index in step with it (see
    `ingest`). Raises UnknownTwin for a twin never created, CorpusError for a bad root."""
    repo = TwinRepository(store)
    if await repo.profile(twin_id) is None:
        raise UnknownTwin(twin_id)
    await set_corpus_root(store, twin_id, root)
    return await ingest(repo, embedder, twin_id, root, paths, progress=progress, force=force)


class IngestReport(BaseModel):
    twin_id: str
    passages: int
    sources: int
    skipped: list[SkippedFile]


async def create_twin_from_folder(
    store: StateStore, twin_dir: Path, *, embedder: Embeds | None = None
) -> IngestReport:
    """The simple path for the sample twin: profile and Markdown corpus; without an
    embedder the vectors are zero and retrieval falls back to keywords."""
    repo = TwinRepository(store)
    profile = load_profile(twin_dir)
    passages, skipped = load_corpus(twin_dir / "corpus")
    await repo.put_profile(profile)
    by_source: dict[str, list[Passage]] = {}
    for passage in passages:
        by_source.setdefault(passage.source_id, []).append(passage)
    for source_id, items in by_source.items():
        path = twin_dir / "corpus" / source_id
        first = items[0]
        await repo.put_source(
            profile.id,
            SourceRecord(
                source_id=source_id,
                title=first.title,
                date=first.date,
                origin=first.origin,
                scope=first.scope,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                size=path.stat().st_size,
                passages=len(items),
                embedding=EMBEDDING_FORMAT if embedder is not None else "",
            ),
            items,
            embedder.embed([embedding_text(p) for p in items])
            if embedder is not None
            else np.zeros((len(items), DIM), dtype=np.float32),
        )
    return IngestReport(
        twin_id=profile.id,
        passages=len(passages),
        sources=len(by_source),
        skipped=skipped,
    )
