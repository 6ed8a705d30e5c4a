"""The mood service over the real bus: a guest's words and voice in, `MoodEstimated` out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats.aio.client

from tests.conftest import Stack, collect
from tests.test_gateway_rtc import wait_for
from tests.test_rejects import rejected_by
from twincast_bench.mood_set import audio_path, lines, load_pcm
from twincast_shared.bus import Bus
from twincast_shared.contract import MoodEstimated, PcmChunk, UtteranceTranscribed
from twincast_shared.contract import subjects as s
from twincast_shared.moods import get_guest_mood
from twincast_shared.store import StateStore

LINES = {line.id: line for line in lines()}


async def moods_of(nc: nats.aio.client.Client, session: str) -> list[MoodEstimated]:
    return await collect(nc, s.MOOD.of(session), MoodEstimated)


async def speak(bus: Bus, session: str, line_id: str, *, seq0: int = 0) -> int:
    """The line's audio as 20 ms frames, as the gateway sends a guest's microphone."""
    pcm = load_pcm(audio_path(LINES[line_id]))
    seq = seq0
    for start in range(0, len(pcm), 640):
        chunk = PcmChunk(pcm=pcm[start : start + 640], sample_rate=16_000, seq=seq, stream="mic")
        await bus.publish_audio(s.AUDIO_IN.of(session), chunk)
        seq += 1
    return seq


async def turn(bus: Bus, session: str, line_id: str, utterance: str, seq: int) -> int:
    seq = await speak(bus, session, line_id, seq0=seq)
    await asyncio.sleep(0.3)  # the final transcript comes after the end of speech
    await bus.publish(
        UtteranceTranscribed(
            session_id=session, utterance_id=utterance, text=LINES[line_id].text, final=True
        )
    )
    return seq


async def exchange(
    bus: Bus, nc: nats.aio.client.Client, session: str, turns: tuple[str, ...]
) -> tuple[list[MoodEstimated], int]:
    """The guest's normal voice first (calibration lines), then the turns, voice and words.

    Audio goes out faster than real time, and the other services share this process's loop
    with mood (stt transcribes the same audio): moods may come some seconds after the last
    words, so callers wait for what they expect.
    """
    got = await moods_of(nc, session)
    seq = 0
    for calibration in ("k1", "k2", "k3"):
        seq = await speak(bus, session, calibration, seq0=seq)
    for i, line_id in enumerate(turns):
        seq = await turn(bus, session, line_id, f"u{i}", seq)
    return got, seq


def guest_moods(got: list[MoodEstimated]) -> list[MoodEstimated]:
    return [m for m in got if m.whose == "guest"]


def settled(got: list[MoodEstimated], label: str) -> Callable[[], bool]:
    def check() -> bool:
        mine = guest_moods(got)
        return (
            bool(mine)
            and mine[-1].label == label
            and any("text" in m.basis for m in mine)
            and any("voice" in m.basis for m in mine)
        )

    return check


async def test_angry_exchange_reads_frustrated(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
    store: StateStore,
) -> None:
    session = await open_guest()
    got, frames = await exchange(client_bus, nc, session, ("f1", "f2", "f4"))
    ok = await wait_for(settled(got, "frustrated"), 40)
    moods = guest_moods(got)
    assert ok, [(m.label, m.confidence, m.basis) for m in moods]
    last = moods[-1]
    assert last.valence < 0 < last.arousal
    assert last.confidence >= 0.2
    assert len(moods) < frames / 20, "published on change, not on every frame"
    stored = await get_guest_mood(store, session)
    assert stored is not None
    assert stored.label == "frustrated"


async def test_happy_exchange_reads_happy(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
) -> None:
    session = await open_guest()
    got, _ = await exchange(client_bus, nc, session, ("h1", "h3"))
    ok = await wait_for(settled(got, "happy"), 40)
    moods = guest_moods(got)
    assert ok, [(m.label, m.confidence, m.basis) for m in moods]
    assert moods[-1].valence > 0


async def test_mood_turns_with_the_guest(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
) -> None:
    """Frustrated, then won over: the estimate follows, and says so when it changes."""
    session = await open_guest()
    got, seq = await exchange(client_bus, nc, session, ("f1", "f3"))
    assert await wait_for(settled(got, "frustrated"), 30)
    for i, line_id in enumerate(("h1", "h3", "h4")):
        seq = await turn(client_bus, session, line_id, f"w{i}", seq)
    ok = await wait_for(lambda: guest_moods(got)[-1].label == "happy", 30)
    assert ok, [(m.label, m.confidence) for m in guest_moods(got)]


async def test_malformed_audio_is_rejected_and_the_service_goes_on(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
) -> None:
    session = await open_guest()
    good = PcmChunk(pcm=bytes(640), sample_rate=16_000, seq=0, stream="mic").headers()
    odd = await rejected_by(nc, "mood", s.AUDIO_IN.of(session), b"\x00" * 641, headers=good)
    assert "whole number" in odd.reason
    wrong_rate = {**good, "tc-sample-rate": "48000"}
    rate = await rejected_by(nc, "mood", s.AUDIO_IN.of(session), bytes(960), headers=wrong_rate)
    assert "16000" in rate.reason
    unknown = await rejected_by(
        nc, "mood", s.AUDIO_IN.of("nobody-opened-this"), bytes(640), headers=good
    )
    assert "unknown session" in unknown.reason
    got = await moods_of(nc, session)
    await client_bus.publish(
        UtteranceTranscribed(
            session_id=session, utterance_id="u1", text="That's wonderful, thanks!", final=True
        )
    )
    assert await wait_for(lambda: bool(got), 5), "the service must answer after bad input"
