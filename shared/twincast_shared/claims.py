"""Which replica owns a session's stream, so that its audio is processed in order in one place."""

from __future__ import annotations

import time
from uuid import uuid4

from twincast_shared.store import StateStore, key


class SessionClaims:
    """A claim is a Valkey key with a TTL, renewed while the owner keeps seeing the session.

    Every replica sees every frame; only the owner processes it. If the owner dies, its claim
    expires and the next replica to see a frame takes over.
    """

    def __init__(self, store: StateStore, *, service: str, ttl_s: int = 15) -> None:
        self._store = store
        self._service = service
        self._ttl_s = ttl_s
        self.owner_id = uuid4().hex
        self._known: dict[str, tuple[bool, float]] = {}

    async def owns(self, session: str) -> bool:
        now = time.monotonic()
        cached = self._known.get(session)
        if cached is not None and now < cached[1]:
            return cached[0]
        name = key(self._service, "owner", session)
        redis = self._store.redis
        if await redis.set(name, self.owner_id, nx=True, ex=self._ttl_s):
            mine = True
        else:
            holder = await redis.get(name)
            mine = holder is not None and _text(holder) == self.owner_id
            if mine:
                await redis.expire(name, self._ttl_s)
        # Re-check well before the TTL runs out, so an owner renews in time.
        self._known[session] = (mine, now + self._ttl_s / 3)
        return mine

    async def release(self, session: str) -> None:
        self._known.pop(session, None)
        name = key(self._service, "owner", session)
        holder = await self._store.redis.get(name)
        if holder is not None and _text(holder) == self.owner_id:
            await self._store.redis.delete(name)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
