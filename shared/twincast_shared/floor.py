"""Who holds a session's floor: the twin, or one of its owner's consoles.

The floor is a Valkey lock with a lease and a fencing token. A console takes it, renews the
lease while it is alive, and hands it back; a console that vanishes loses it when the lease
runs out. Every holding gets a larger fence than the one before, so a console that lost the
floor and comes back cannot act on it: its fence is stale.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict

from twincast_shared.contract.events import Token
from twincast_shared.metrics import FloorChange, Metrics
from twincast_shared.store import StateStore, key

DEFAULT_LEASE_MS: Final = 5_000
SHADOW_TTL_S: Final = 24 * 3600

# KEYS: floor, fence counter. ARGV: holder, lease ms.
# The lock value is "<fence>:<holder>"; the counter outlives holdings so fences only grow.
_ACQUIRE: Final = """
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, ':', 1, true)
  local holder = string.sub(current, sep + 1)
  if holder ~= ARGV[1] then
    return {0, current, 0}
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {tonumber(string.sub(current, 1, sep - 1)), current, 0}
end
local fence = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 86400000)
local value = fence .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {fence, value, 1}
"""

# KEYS: floor. ARGV: "<fence>:<holder>", lease ms (0 = release).
_RENEW_OR_RELEASE: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


class Holding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    holder: Token
    fence: int


class FloorTaken(Exception):
    """Another console holds the floor."""

    def __init__(self, holding: Holding) -> None:
        super().__init__(f"the floor is held by console {holding.holder}")
        self.holding = holding


class Floor:
    def __init__(
        self, store: StateStore, *, lease_ms: int = DEFAULT_LEASE_MS, metrics: Metrics | None = None
    ) -> None:
        self._redis = store.redis
        self.lease_ms = lease_ms
        self._metrics = metrics
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew_or_release = self._redis.register_script(_RENEW_OR_RELEASE)

    async def take(self, session: str, holder: str) -> Holding:
        """The floor for `holder` (again, if it holds it already); FloorTaken if another does."""
        floor = key("session", session, "floor")
        fence, value, new = await self._acquire(
            keys=[floor, key("session", session, "floor", "fence")], args=[holder, self.lease_ms]
        )
        holding = _parse(value)
        if int(fence) == 0:
            self._count("refused")
            raise FloorTaken(holding)
        if int(new):
            self._count("taken")
        return holding

    async def renew(self, session: str, holding: Holding) -> bool:
        """Extends the lease; False if the holding has expired or was superseded."""
        kept = await self._apply(session, holding, self.lease_ms)
        if not kept:
            self._count("lost")
        return kept

    async def release(self, session: str, holding: Holding) -> bool:
        """Hands the floor back; False if this holding had already lost it."""
        released = await self._apply(session, holding, 0)
        self._count("released" if released else "lost")
        return released

    async def holder(self, session: str) -> Holding | None:
        value = await self._redis.get(key("session", session, "floor"))
        return None if value is None else _parse(value)

    def _count(self, kind: FloorChange) -> None:
        if self._metrics is not None:
            self._metrics.floor_changed(kind)

    async def _apply(self, session: str, holding: Holding, lease_ms: int) -> bool:
        done = await self._renew_or_release(
            keys=[key("session", session, "floor")],
            args=[f"{holding.fence}:{holding.holder}", lease_ms],
        )
        return bool(done)


class Shadow:
    """Shadow mode: the twin drafts its answers for the owner's approval instead of speaking."""

    def __init__(self, store: StateStore) -> None:
        self._redis = store.redis

    async def set(self, session: str, on: bool) -> None:
        name = key("session", session, "shadow")
        if on:
            await self._redis.set(name, b"1", ex=SHADOW_TTL_S)
        else:
            await self._redis.delete(name)

    async def is_on(self, session: str) -> bool:
        return bool(await self._redis.exists(key("session", session, "shadow")))


def _parse(value: bytes | str) -> Holding:
    text = value.decode() if isinstance(value, bytes) else value
    fence, _, holder = text.partition(":")
    return Holding(holder=holder, fence=int(fence))
