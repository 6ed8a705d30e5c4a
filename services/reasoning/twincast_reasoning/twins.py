"""Twins in the state store: profile and passages, shared by every reasoning replica."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from twincast_reasoning.corpus import Passage, SkippedFile, load_corpus, load_profile
from twincast_shared.store import StateStore, key
from twincast_shared.twins import TwinProfile, get_profile


class IngestReport(BaseModel):
    twin_id: str
    passages: int
    sources: int
    skipped: list[SkippedFile]


class TwinRepository:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def profile(self, twin_id: str) -> TwinProfile | None:
        return await get_profile(self._store, twin_id)

    async def passages(self, twin_id: str) -> list[Passage]:
        return await self._store.get_list(key("twin", twin_id, "passages"), Passage)

    async def version(self, twin_id: str) -> int:
        raw = await self._store.redis.get(key("twin", twin_id, "version"))
        return int(raw) if raw is not None else 0

    async def create_from_dir(self, twin_dir: Path) -> IngestReport:
        profile = load_profile(twin_dir)
        passages, skipped = load_corpus(twin_dir / "corpus")
        await self._store.put(key("twin", profile.id), profile)
        await self._store.put_list(key("twin", profile.id, "passages"), passages)
        await self._store.incr(key("twin", profile.id, "version"))
        return IngestReport(
            twin_id=profile.id,
            passages=len(passages),
            sources=len({p.source_id for p in passages}),
            skipped=skipped,
        )
