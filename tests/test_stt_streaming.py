"""Recorded speech streamed like a microphone through the stt service on a real bus."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats.aio.client
import numpy as np

from tests.conftest import SPEECH, Stack
from twincast.client import stream_speech
from twincast_shared.bus import Bus
from twincast_shared.contract import TURN_EVENT, SpeechEnded, SpeechStarted, UtteranceTranscribed
from twincast_shared.contract import subjects as s
from twincast_testkit.wer import wer


def pcm_of(name: str) -> bytes:
    with wave.open(str(SPEECH / name)) as wav:
        return wav.readframes(wav.getnframes())


@dataclass
class Heard:
    events: list[object] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]


async def listen(nc: nats.aio.client.Client, session: str) -> tuple[Heard, list[object]]:
    heard = Heard()

    async def on_turn(msg: nats.aio.client.Msg) -> None:
        event = TURN_EVENT.validate_json(msg.data)
        heard.events.append(event)
        if isinstance(event, SpeechEnded):
            heard.done.set()

    async def on_text(msg: nats.aio.client.Msg) -> None:
        heard.events.append(UtteranceTranscribed.model_validate_json(msg.data))

    subs = [
        await nc.subscribe(s.TURN.of(session), cb=on_turn),
        await nc.subscribe(s.STT_PARTIAL.of(session), cb=on_text),
        await nc.subscribe(s.STT_FINAL.of(session), cb=on_text),
    ]
    await nc.flush()
    return heard, subs


async def test_live_speech_gives_start_partials_final_and_end(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
    speech_files: dict[str, str],
) -> None:
    session = await open_guest()
    heard, subs = await listen(nc, session)
    await stream_speech(
        client_bus,
        session,
        pcm_of("arctic_a0007.wav"),
        realtime=True,
        tail_silence_ms=1200,
        last=False,
    )
    await asyncio.wait_for(heard.done.wait(), timeout=10)
    for sub in subs:
        await sub.unsubscribe()

    kinds = [type(e).__name__ for e in heard.events]
    assert kinds[0] == "SpeechStarted", kinds
    (started,) = heard.of(SpeechStarted)
    (ended,) = heard.of(SpeechEnded)
    finals = [e for e in heard.of(UtteranceTranscribed) if e.final]
    partials = [e for e in heard.of(UtteranceTranscribed) if not e.final]
    assert len(finals) == 1
    assert wer(speech_files["arctic_a0007.wav"], finals[0].text) <= 0.2, finals[0].text
    assert len(partials) >= 3, "partials while the guest speaks"
    assert all(p.utterance_id == started.utterance_id for p in partials)
    assert kinds.index("SpeechEnded") > kinds.index("SpeechStarted")
    # The onset lies where the recording's speech begins (the file opens with ~0.4 s of silence).
    assert 200 <= started.at_ms <= 600
    assert 3000 <= ended.at_ms <= 3900


async def test_two_sessions_at_once_do_not_mix(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
    speech_files: dict[str, str],
) -> None:
    names = ["arctic_a0007.wav", "arctic_a0009.wav"]
    sessions = [await open_guest() for _ in names]
    listening = [await listen(nc, session) for session in sessions]
    await asyncio.gather(
        *(
            stream_speech(
                client_bus, session, pcm_of(name), realtime=True, tail_silence_ms=1200, last=False
            )
            for session, name in zip(sessions, names, strict=True)
        )
    )
    for (heard, subs), name in zip(listening, names, strict=True):
        await asyncio.wait_for(heard.done.wait(), timeout=15)
        final = next(e for e in heard.of(UtteranceTranscribed) if e.final)
        assert wer(speech_files[name], final.text) <= 0.2, (name, final.text)
        for sub in subs:
            await sub.unsubscribe()


async def test_a_pause_inside_a_sentence_does_not_end_the_turn(
    stack: Stack,
    nc: nats.aio.client.Client,
    client_bus: Bus,
    open_guest: Callable[..., Awaitable[str]],
) -> None:
    """Half a sentence, a 450 ms pause on "the", the rest: one turn, not two."""
    pcm = np.frombuffer(pcm_of("arctic_a0007.wav"), dtype="<i2")
    cut = int(2.62 * 16_000)  # after "...want to see it in the"
    paused = np.concatenate([pcm[:cut], np.zeros(int(0.45 * 16_000), "<i2"), pcm[cut:]])
    session = await open_guest()
    heard, subs = await listen(nc, session)
    await stream_speech(
        client_bus, session, paused.tobytes(), realtime=True, tail_silence_ms=1500, last=False
    )
    await asyncio.wait_for(heard.done.wait(), timeout=10)
    await asyncio.sleep(1.0)
    for sub in subs:
        await sub.unsubscribe()
    finals = [e for e in heard.of(UtteranceTranscribed) if e.final]
    assert len(finals) == 1, [f.text for f in finals]
    assert "degree" in finals[0].text.lower()
