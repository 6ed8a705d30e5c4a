"""Speculative answers over the real bus: composed when the guest pauses, counted only if the
turn really ends there, superseded if the final words differ."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats.aio.client

from tests.conftest import Stack, collect
from tests.test_gateway_rtc import wait_for
from twincast_shared.bus import Bus
from twincast_shared.contract import ReplyChunk, UtteranceTranscribed
from twincast_shared.contract import subjects as s
from twincast_shared.sessions import peek_turn
from twincast_shared.store import StateStore

QUESTION = "How many species of bees did you find on the rooftops?"


async def replies_of(nc: nats.aio.client.Client, session: str) -> list[ReplyChunk]:
    return await collect(nc, s.REPLY.of(session), ReplyChunk)


async def settle(got: list[ReplyChunk], count: int, timeout_s: float = 10) -> None:
    assert await wait_for(lambda: len({c.reply_id for c in got if c.final}) >= count, timeout_s)
    await asyncio.sleep(0.3)


def transcript(
    session: str, text: str, *, final: bool, speculative: bool = False
) -> UtteranceTranscribed:
    return UtteranceTranscribed(
        session_id=session, utterance_id="u1", text=text, final=final, speculative=speculative
    )


async def test_speculation_confirmed_by_the_final_is_the_answer(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
    store: StateStore,
) -> None:
    session = await open_guest()
    got = await replies_of(nc, session)
    await client_bus.publish(transcript(session, QUESTION, final=False, speculative=True))
    await settle(got, 1)
    assert got
    assert all(c.provisional and c.utterance_id == "u1" for c in got)
    assert await peek_turn(store, session) == 0, "nothing counts before the turn ends"
    await client_bus.publish(transcript(session, QUESTION, final=True))
    # The shared stack may still be answering an earlier test's guests: wait for this turn.
    for _ in range(250):
        if await peek_turn(store, session):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    assert len({c.reply_id for c in got}) == 1, "the final must not be answered twice"
    assert await peek_turn(store, session) == 1


async def test_final_with_other_words_gets_its_own_answer(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
) -> None:
    session = await open_guest()
    got = await replies_of(nc, session)
    await client_bus.publish(transcript(session, "How many species", final=False, speculative=True))
    await settle(got, 1)
    await client_bus.publish(transcript(session, QUESTION, final=True))
    await settle(got, 2)
    final = [c for c in got if not c.provisional]
    assert final
    assert {c.utterance_id for c in final} == {"u1"}
    assert "species" in " ".join(c.text for c in final)


def test_a_transcript_cannot_be_both_speculative_and_final() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="speculative or final"):
        UtteranceTranscribed(
            session_id="s", utterance_id="u", text="x", final=True, speculative=True
        )
