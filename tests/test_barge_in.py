"""The guest talks over the twin: stt says SpeechStarted, and tts falls silent."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Awaitable, Callable

import nats.aio.client

from tests.conftest import SPEECH, Stack
from twincast.client import stream_speech
from twincast_shared.bus import Bus
from twincast_shared.contract import PcmChunk, ReplyChunk
from twincast_shared.contract import subjects as s

JSON = {"content-type": "application/json"}


async def test_guest_speech_stops_the_twin_mid_reply(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
) -> None:
    session = await open_guest()
    audio: list[tuple[float, PcmChunk]] = []
    started: list[float] = []
    speaking = asyncio.Event()

    async def on_audio(msg: nats.aio.client.Msg) -> None:
        audio.append((time.perf_counter(), PcmChunk.from_wire(msg.data, msg.headers or {})))
        speaking.set()

    async def on_turn(msg: nats.aio.client.Msg) -> None:
        if b"speech_started" in msg.data:
            started.append(time.perf_counter())

    subs = [
        await nc.subscribe(s.TTS_AUDIO.of(session), cb=on_audio),
        await nc.subscribe(s.TURN.of(session), cb=on_turn),
    ]
    sentences = [
        f"This is sentence {i} of a long answer about the bees on the forty roofs of Port Alder."
        for i in range(12)
    ]
    for seq, text in enumerate(sentences):
        chunk = ReplyChunk(
            session_id=session,
            reply_id="long",
            in_reply_to="q",
            seq=seq,
            text=text,
            final=seq == len(sentences) - 1,
        )
        await nc.publish(s.REPLY.of(session), chunk.model_dump_json().encode(), headers=JSON)
    await asyncio.wait_for(speaking.wait(), timeout=15)

    with wave.open(str(SPEECH / "arctic_a0009.wav")) as wav:
        speech = wav.readframes(wav.getnframes())
    await stream_speech(client_bus, session, speech, realtime=True, last=False)
    await asyncio.sleep(1.5)
    for sub in subs:
        await sub.unsubscribe()

    assert started, "stt did not report the guest's speech"
    # (Audio of other replies may follow: the answer to the interruption, composed while the
    # guest pauses, is synthesized at once and held until the turn ends.)
    long = [(at, chunk) for at, chunk in audio if chunk.stream == "long"]
    after = [chunk for at, chunk in long if at > started[0] + 0.05]
    assert after == [], f"{len(after)} audio chunks after the guest started talking"
    assert not any(chunk.last for _, chunk in long), "the long reply was spoken to the end"
