"""Who a session belongs to and what its guest may hear. Set at join, read by every service."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from twincast_shared.contract.events import Scope, Token
from twincast_shared.store import StateStore, key

SESSION_TTL_S = 24 * 3600


class SessionInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: Token
    twin_id: Token
    guest_id: Token | None = None
    scope: Scope = "public"
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))


class UnknownSession(LookupError):
    pass


async def open_session(store: StateStore, info: SessionInfo) -> None:
    await store.put(key("session", info.session_id), info, ttl_s=SESSION_TTL_S)
    live = key("twin", info.twin_id, "live")
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.zadd(live, {info.session_id: time.time()})
        pipe.zremrangebyscore(live, 0, time.time() - SESSION_TTL_S)
        pipe.expire(live, SESSION_TTL_S)
        await pipe.execute()


async def end_session(store: StateStore, twin_id: str, session_id: str) -> None:
    """Takes an ended session off its twin's live list (the session record expires alone)."""
    await store.redis.zrem(key("twin", twin_id, "live"), session_id)


async def live_sessions(store: StateStore, twin_id: str) -> list[str]:
    """The twin's sessions opened in the last day and not ended yet."""
    live = key("twin", twin_id, "live")
    found = await store.redis.zrangebyscore(live, time.time() - SESSION_TTL_S, "+inf")
    return [s.decode() if isinstance(s, bytes) else str(s) for s in found]


async def get_session(store: StateStore, session_id: str) -> SessionInfo:
    info = await store.get(key("session", session_id), SessionInfo)
    if info is None:
        raise UnknownSession(session_id)
    return info


async def next_turn(store: StateStore, session_id: str) -> int:
    """Counts the session's turns; the first turn is 1."""
    return await store.incr(key("session", session_id, "turns"), ttl_s=SESSION_TTL_S)


async def peek_turn(store: StateStore, session_id: str) -> int:
    """How many turns the session has had, without counting a new one."""
    value = await store.redis.get(key("session", session_id, "turns"))
    return int(value) if value is not None else 0
