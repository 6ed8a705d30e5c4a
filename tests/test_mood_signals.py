"""The owner's signals over HTTP through the gateway, into mood, onto the avatar's face."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Stack
from tests.test_gateway_rtc import gateway, wait_for
from twincast_shared.bus import Bus
from twincast_shared.contract import OwnerSignal
from twincast_shared.moods import set_signals_enabled, stored_signals
from twincast_shared.store import StateStore, key
from twincast_testkit.rtc_client import TwinCall

TWIN = "juniper"
SIGNALS = f"/api/twins/{TWIN}/signals"


@pytest.fixture
async def owner(stack: Stack, store: StateStore) -> AsyncIterator[dict[str, str]]:
    """The owner's Authorization header; signals on before, and nothing left after."""
    _, service = gateway(stack)
    token = service.signer.issue(twin=TWIN, scope="private", ttl_s=300, role="owner")
    await set_signals_enabled(store, TWIN, False)
    await set_signals_enabled(store, TWIN, True)
    yield {"Authorization": f"Bearer {token}"}
    await set_signals_enabled(store, TWIN, False)
    await store.redis.delete(key("twin", TWIN, "signals", "consent"))


async def call(
    stack: Stack,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: Any = None,
    raw: str = "",
) -> tuple[int, Any]:
    url, _ = gateway(stack)
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{url}{path}",
            json=body if not raw else None,
            data=raw or None,
            headers=headers,
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_owner_signals_change_the_avatar_energy(
    stack: Stack, owner: dict[str, str], store: StateStore
) -> None:
    url, service = gateway(stack)
    token = service.signer.issue(twin=TWIN, scope="public", ttl_s=60)
    async with TwinCall(base_url=url, token=token) as call_:
        await call_.connected()
        assert await wait_for(lambda: len(call_.received.animation) > 10, 10)
        before = [a["energy"] for _, a in call_.received.animation[-10:]]
        tired_at = time.monotonic()
        status, reply = await call(
            stack,
            "POST",
            SIGNALS,
            headers=owner,
            body=[
                {"kind": "sleep_hours", "value": 3.5},
                {"kind": "calendar_load", "value": 0.95},
                {"kind": "meetings_today", "value": 9},
            ],
        )
        assert (status, reply) == (202, {"accepted": 3})

        def energies_since(at: float) -> list[float]:
            return [a["energy"] for t, a in call_.received.animation if t > at]

        assert await wait_for(lambda: min(energies_since(tired_at), default=1) < 0.35, 10), (
            "a short night and a packed day must tire the face"
        )
        rested_at = time.monotonic()
        status, _ = await call(
            stack,
            "POST",
            SIGNALS,
            headers=owner,
            body=[
                {"kind": "sleep_hours", "value": 8.5},
                {"kind": "calendar_load", "value": 0.1},
                {"kind": "meetings_today", "value": 1},
                {"kind": "hrv", "value": 85},
            ],
        )
        assert status == 202
        assert await wait_for(lambda: max(energies_since(rested_at), default=0) > 0.7, 10)
    assert min(before) == pytest.approx(max(before), abs=0.05), "steady before any signal"
    stored = await stored_signals(store, TWIN)
    assert stored["sleep_hours"].value == 8.5


async def test_signals_refused_after_switch_off_and_nothing_stored(
    stack: Stack, owner: dict[str, str], store: StateStore, client_bus: Bus
) -> None:
    status, _ = await call(
        stack, "POST", SIGNALS, headers=owner, body={"kind": "heart_rate", "value": 72}
    )
    assert status == 202
    kept = False
    for _ in range(50):
        if kept := "heart_rate" in await stored_signals(store, TWIN):
            break
        await asyncio.sleep(0.05)
    assert kept

    status, reply = await call(
        stack, "PUT", f"{SIGNALS}/consent", headers=owner, body={"enabled": False}
    )
    assert status == 200
    assert reply["enabled"] is False
    assert await stored_signals(store, TWIN) == {}, "switching off erases what was kept"
    status, reply = await call(stack, "GET", f"{SIGNALS}/consent", headers=owner)
    assert reply == {"enabled": False}

    status, reply = await call(
        stack, "POST", SIGNALS, headers=owner, body={"kind": "heart_rate", "value": 90}
    )
    assert status == 409
    assert "switched signals off" in reply["error"]
    # A device that publishes on the bus directly is not kept either.
    await client_bus.publish(OwnerSignal(session_id=TWIN, twin_id=TWIN, kind="steps", value=4_000))
    await asyncio.sleep(0.5)
    assert await stored_signals(store, TWIN) == {}
    assert not await store.redis.exists(key("twin", TWIN, "signals"))
    status, reply = await call(stack, "GET", SIGNALS, headers=owner)
    assert reply == {"enabled": False, "signals": {}}

    status, _ = await call(
        stack, "PUT", f"{SIGNALS}/consent", headers=owner, body={"enabled": True}
    )
    assert status == 200
    status, _ = await call(
        stack, "POST", SIGNALS, headers=owner, body={"kind": "heart_rate", "value": 90}
    )
    assert status == 202


@pytest.mark.parametrize(
    ("body", "raw", "status", "reason"),
    [
        ({"kind": "mood_ring", "value": 1}, "", 422, "unknown signal kind 'mood_ring'"),
        ({"kind": "heart_rate", "value": 400}, "", 422, "heart_rate=400 is implausible"),
        ({"kind": "sleep_hours", "value": -2}, "", 422, "implausible"),
        (None, '{"kind": "heart_rate", "value": NaN}', 422, "finite"),
        (
            {"kind": "heart_rate", "value": 70, "ts": "2099-01-01T00:00:00Z"},
            "",
            422,
            "future",
        ),
        ({"kind": "heart_rate", "value": "fast"}, "", 422, "value"),
        ({"kind": "heart_rate"}, "", 422, "value"),
        ({"kind": "heart_rate", "value": 70, "extra": 1}, "", 422, "expected"),
        (None, "{not json", 400, "not valid JSON"),
        ([], "", 400, "send 1 to 100"),
    ],
)
async def test_bad_signal_payloads_are_refused_clearly(
    stack: Stack,
    owner: dict[str, str],
    store: StateStore,
    body: Any,
    raw: str,
    status: int,
    reason: str,
) -> None:
    got, reply = await call(stack, "POST", SIGNALS, headers=owner, body=body, raw=raw)
    assert got == status, reply
    assert reason in reply["error"]
    assert await stored_signals(store, TWIN) == {}


async def test_a_bad_signal_refuses_the_whole_batch(
    stack: Stack, owner: dict[str, str], store: StateStore
) -> None:
    body = [{"kind": "steps", "value": 1000}, {"kind": "steps", "value": -5}]
    status, reply = await call(stack, "POST", SIGNALS, headers=owner, body=body)
    assert status == 422
    assert "[1]" in reply["error"]
    assert "known_kinds" in reply
    await asyncio.sleep(0.3)
    assert await stored_signals(store, TWIN) == {}


async def test_only_the_owner_may_post_signals(stack: Stack, owner: dict[str, str]) -> None:
    _, service = gateway(stack)
    guest = service.signer.issue(twin=TWIN, scope="public", ttl_s=60)
    other = service.signer.issue(twin="someone-else", scope="private", ttl_s=60, role="owner")
    expired = service.signer.issue(twin=TWIN, scope="private", ttl_s=1, role="owner", now=0)
    forged = owner["Authorization"][:-4] + "AAAA"
    signal = {"kind": "heart_rate", "value": 70}
    cases = [
        ({}, 401, "token is required"),
        ({"Authorization": forged}, 401, "signature"),
        ({"Authorization": f"Bearer {expired}"}, 401, "expired"),
        ({"Authorization": f"Bearer {guest}"}, 403, "only the twin's owner"),
        ({"Authorization": f"Bearer {other}"}, 403, "another twin"),
    ]
    for headers, status, reason in cases:
        got, reply = await call(stack, "POST", SIGNALS, headers=headers, body=signal)
        assert (got, reason in reply["error"]) == (status, True), (headers, reply)
    got, _ = await call(stack, "PUT", f"{SIGNALS}/consent", headers={}, body={"enabled": False})
    assert got == 401
