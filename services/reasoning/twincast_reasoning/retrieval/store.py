"""A twin's corpus in the state store, shared by every reasoning replica.

Layout (every key under `twincast:twin:<twin>`):
- (the key itself)          TwinProfile JSON
- `:sources`                hash: source_id → SourceRecord JSON
- `:passages:<source_key>`  JSON list of the source's Passage, in order
- `:vectors:<source_key>`   float32 bytes, one 384-d row per passage, same order
- `:version`                incremented on every change; replicas reload when it moves
`source_key` is a short hash of the source_id (source ids are paths, not key-safe tokens).

Knows nothing of where passages come from (`corpus/`) or how they are searched (`index.py`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from twincast_reasoning.corpus.passages import Passage
from twincast_reasoning.retrieval.embeddings import DIM
from twincast_shared.contract.events import Scope
from twincast_shared.store import StateStore, key
from twincast_shared.twins import TwinProfile, get_profile

_PASSAGES = TypeAdapter(list[Passage])


class UnknownTwin(LookupError):
    pass


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
