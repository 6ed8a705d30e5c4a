"""Mood state in the store: each session's latest guest mood, and each twin's owner signals.

Owner signals are personal (health, calendar) data. They are kept only while the owner's
consent is on, each kind only for as long as it says anything about the owner now, and
switching consent off erases them in the same transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ConfigDict

from twincast_shared.contract import MoodEstimated, OwnerSignal
from twincast_shared.store import StateStore, key

GUEST_MOOD_TTL_S: Final = 24 * 3600
# How long a signal of each kind still says something about the owner's state.
SIGNAL_FRESH_S: Final = {
    "heart_rate": 30 * 60,
    "resting_heart_rate": 24 * 3600,
    "hrv": 24 * 3600,
    "sleep_hours": 24 * 3600,
    "steps": 24 * 3600,
    "calendar_load": 24 * 3600,
    "meetings_today": 24 * 3600,
}
SIGNALS_TTL_S: Final = max(SIGNAL_FRESH_S.values())

# Store one signal only while consent is on: the check and the write are one atomic step, so a
# signal in flight when the owner switches off is never kept.
_STORE_IF_CONSENTED: Final = """
if redis.call('GET', KEYS[1]) == 'off' then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""


class StoredSignal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float
    measured: float  # Unix time


@dataclass(frozen=True, slots=True)
class FreshSignal:
    kind: str
    value: float
    age_s: float


def _mood_key(session_id: str) -> str:
    return key("session", session_id, "mood")


def _consent_key(twin_id: str) -> str:
    return key("twin", twin_id, "signals", "consent")


def _signals_key(twin_id: str) -> str:
    return key("twin", twin_id, "signals")


async def put_guest_mood(store: StateStore, mood: MoodEstimated) -> None:
    await store.put(_mood_key(mood.session_id), mood, ttl_s=GUEST_MOOD_TTL_S)


async def get_guest_mood(store: StateStore, session_id: str) -> MoodEstimated | None:
    return await store.get(_mood_key(session_id), MoodEstimated)


async def signals_enabled(store: StateStore, twin_id: str) -> bool:
    """On unless the owner switched it off."""
    raw = await store.redis.get(_consent_key(twin_id))
    return raw is None or _text(raw) != "off"


async def set_signals_enabled(store: StateStore, twin_id: str, enabled: bool) -> int:
    """Switches consent; off erases every stored signal. Returns how many were erased."""
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.hlen(_signals_key(twin_id))
        pipe.set(_consent_key(twin_id), "on" if enabled else "off")
        if not enabled:
            pipe.delete(_signals_key(twin_id))
        count, *_ = await pipe.execute()
    return 0 if enabled else int(count)


async def store_signal(store: StateStore, signal: OwnerSignal) -> bool:
    """Keeps the latest value of the signal's kind; False (nothing kept) when consent is off."""
    stored = StoredSignal(value=signal.value, measured=signal.ts.timestamp())
    done = await store.redis.eval(
        _STORE_IF_CONSENTED,
        2,
        _consent_key(signal.twin_id),
        _signals_key(signal.twin_id),
        signal.kind,
        stored.model_dump_json(),
        str(SIGNALS_TTL_S),
    )
    return bool(done)


async def stored_signals(store: StateStore, twin_id: str) -> dict[str, StoredSignal]:
    raw = await store.redis.hgetall(_signals_key(twin_id))
    return {_text(k): StoredSignal.model_validate_json(v) for k, v in raw.items()}


async def fresh_signals(
    store: StateStore, twin_id: str, *, now: float | None = None
) -> list[FreshSignal]:
    """The stored signals that still describe the owner now, newest measurement per kind."""
    at = time.time() if now is None else now
    fresh = []
    for kind, stored in (await stored_signals(store, twin_id)).items():
        age = max(0.0, at - stored.measured)
        if age <= SIGNAL_FRESH_S.get(kind, 0):
            fresh.append(FreshSignal(kind, stored.value, age))
    return fresh


async def erase_signals(store: StateStore, twin_id: str) -> int:
    return await store.delete(_signals_key(twin_id))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
