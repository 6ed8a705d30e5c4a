"""A twin's corpus in the state store, shared by every reasoning replica.

Layout (every key under `twincast:twin:<twin>`):
- (the key itself)          TwinProfile JSON
- `:sources`                hash: source_id → SourceRecord JSON
- `:passages:<source_key>`  JSON list of the source's Passage, in order
- `:vectors:<source_key>`   float32 bytes, one 384-d row per passage, same order
- `:version`                incremented on every change; replicas reload when it moves
`source_key` is a short hash of the source_id (source ids are paths, not key-safe tokens).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from twincast_reasoning.corpus import (
    EMBEDDING_FORMAT,
    Passage,
    SkippedFile,
    embedding_text,
    load_corpus,
    load_profile,
)
from twincast_reasoning.embeddings import DIM, Embedder
from twincast_shared.contract.events import Scope
from twincast_shared.store import StateStore, key
from twincast_shared.twins import TwinProfile, get_profile

_PASSAGES = TypeAdapter(list[Passage])


class SourceRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source_id: str
    title: str
    date: str | None = None
    origin: str | None = None
    scope: Scope
    sha256: str
    size: int
    passages: int
    # How the vectors were made (corpus.EMBEDDING_FORMAT); "" for zero or older vectors.
    embedding: str = ""
    ingested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class IngestReport(BaseModel):
    twin_id: str
    passages: int
    sources: int
    skipped: list[SkippedFile]


def source_key(source_id: str) -> str:
    return hashlib.sha256(source_id.encode()).hexdigest()[:24]


class TwinRepository:
    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._redis = store.redis

    async def profile(self, twin_id: str) -> TwinProfile | None:
        return await get_profile(self._store, twin_id)

    async def put_profile(self, profile: TwinProfile) -> None:
        await self._store.put(key("twin", profile.id), profile)
        await self._redis.incr(key("twin", profile.id, "version"))

    async def version(self, twin_id: str) -> int:
        raw = await self._redis.get(key("twin", twin_id, "version"))
        return int(raw) if raw is not None else 0

    async def sources(self, twin_id: str) -> dict[str, SourceRecord]:
        raw = await self._redis.hgetall(key("twin", twin_id, "sources"))
        return {
            (k.decode() if isinstance(k, bytes) else k): SourceRecord.model_validate_json(v)
            for k, v in raw.items()
        }

    async def put_source(
        self, twin_id: str, record: SourceRecord, passages: list[Passage], vectors: np.ndarray
    ) -> None:
        """Replace one source's passages and vectors in one transaction."""
        if vectors.shape != (len(passages), DIM):
            raise ValueError(f"vectors {vectors.shape} do not match {len(passages)} passages")
        skey = source_key(record.source_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key("twin", twin_id, "sources"), record.source_id, record.model_dump_json())
            pipe.set(key("twin", twin_id, "passages", skey), _PASSAGES.dump_json(passages))
            pipe.set(key("twin", twin_id, "vectors", skey), vectors.astype("<f4").tobytes())
            pipe.incr(key("twin", twin_id, "version"))
            await pipe.execute()

    async def delete_source(self, twin_id: str, source_id: str) -> None:
        skey = source_key(source_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(key("twin", twin_id, "sources"), source_id)
            pipe.delete(key("twin", twin_id, "passages", skey))
            pipe.delete(key("twin", twin_id, "vectors", skey))
            pipe.incr(key("twin", twin_id, "version"))
            await pipe.execute()

    async def source_passages(self, twin_id: str, source_id: str) -> list[Passage]:
        raw = await self._redis.get(key("twin", twin_id, "passages", source_key(source_id)))
        return [] if raw is None else _PASSAGES.validate_json(raw)

    async def source_vectors(self, twin_id: str, source_id: str) -> np.ndarray:
        raw = await self._redis.get(key("twin", twin_id, "vectors", source_key(source_id)))
        if not isinstance(raw, bytes):
            return np.zeros((0, DIM), dtype=np.float32)
        return np.frombuffer(raw, dtype="<f4").reshape(-1, DIM)

    async def passages(self, twin_id: str) -> list[Passage]:
        out: list[Passage] = []
        for source_id in sorted(await self.sources(twin_id)):
            out.extend(await self.source_passages(twin_id, source_id))
        return out

    async def create_from_dir(
        self, twin_dir: Path, *, embedder: Embedder | None = None
    ) -> IngestReport:
        """The simple path for the sample twin: profile and Markdown corpus; without an
        embedder the vectors are zero and retrieval falls back to keywords."""
        profile = load_profile(twin_dir)
        passages, skipped = load_corpus(twin_dir / "corpus")
        await self.put_profile(profile)
        by_source: dict[str, list[Passage]] = {}
        for passage in passages:
            by_source.setdefault(passage.source_id, []).append(passage)
        for source_id, items in by_source.items():
            path = twin_dir / "corpus" / source_id
            first = items[0]
            await self.put_source(
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
