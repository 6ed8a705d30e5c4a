"""A guest's turn from outside the stack: publish a question, gather transcript, reply, speech."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

from faststream.nats.annotations import NatsMessage
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

from twincast.audio_io import read_wav_mono16k, write_wav
from twincast_shared.bus import Bus, make_broker
from twincast_shared.contract import (
    GUEST_FRAME_MS,
    GUEST_SAMPLE_RATE,
    Citation,
    GuestTextSubmitted,
    PcmChunk,
    Rejected,
    ReplyChunk,
    Scope,
    UtteranceTranscribed,
)
from twincast_shared.contract import subjects as s
from twincast_shared.sessions import SessionInfo, open_session
from twincast_shared.settings import CommonSettings
from twincast_shared.store import StateStore
from twincast_shared.telemetry import PII_PREFIX, make_tracer_provider


class TurnFailed(RuntimeError):
    pass


class TurnResult(BaseModel):
    session_id: str
    transcript: str
    reply: str
    reply_wav: str | None
    citations: list[Citation]
    deferred: bool
    timings_ms: dict[str, float]


@dataclass
class _Gathered:
    transcript: str | None = None
    reply: list[ReplyChunk] = field(default_factory=list)
    audio: dict[int, bytes] = field(default_factory=dict)
    audio_rate: int = 22_050
    marks: dict[str, float] = field(default_factory=dict)
    rejected: Rejected | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    audio_done: bool = False
    dropped: set[str] = field(default_factory=set)

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())
        self.changed.set()


async def wait_ready(bus: Bus, services: list[str], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for name in services:
        while True:
            try:
                reply = await bus.broker.request(b"", s.HEALTH.of(name), timeout=1.0)
                if b'"ready":true' in reply.body.replace(b" ", b""):
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise TurnFailed(f"service {name} is not answering on the bus")
            await asyncio.sleep(0.1)


async def ask(
    settings: CommonSettings,
    *,
    text: str | None = None,
    audio: Path | None = None,
    out_wav: Path | None = None,
    scope: Scope = "public",
    guest_id: str | None = None,
    timeout_s: float = 60.0,
    tracer_provider: TracerProvider | None = None,
    session_id: str | None = None,
    twin: str | None = None,
    speak: bool = True,
) -> TurnResult:
    """One turn. Pass the `session_id` of an earlier result to go on with that conversation;
    `speak=False` returns once the reply text is complete, without waiting for the speech."""
    if (text is None) == (audio is None):
        raise ValueError("ask needs either text or audio")
    pcm = read_wav_mono16k(audio) if audio is not None else b""
    session_id = session_id or uuid4().hex
    provider = tracer_provider or make_tracer_provider("client")
    broker = make_broker(settings, service="client", tracer_provider=provider)
    bus = Bus(broker, service="client")
    got = _Gathered()

    @broker.subscriber(s.STT_FINAL.of(session_id))
    async def on_final(event: UtteranceTranscribed) -> None:
        if not got.transcript:
            got.transcript = event.text
            got.mark("transcript")

    @broker.subscriber(s.REPLY.of(session_id))
    async def on_reply(event: ReplyChunk) -> None:
        if not event.provisional and event.utterance_id is not None:
            # The final words differed from the speculative ones: so does the answer.
            stale = {
                c.reply_id
                for c in got.reply
                if c.provisional and c.utterance_id == event.utterance_id
            }
            if stale:
                got.dropped |= stale
                got.reply = [c for c in got.reply if c.reply_id not in stale]
                got.audio.clear()
                got.audio_done = False
        got.reply.append(event)
        got.mark("reply_first")
        if event.final:
            got.mark("reply_final")

    @broker.subscriber(s.TTS_AUDIO.of(session_id))
    async def on_audio(body: bytes, message: NatsMessage) -> None:
        chunk = PcmChunk.from_wire(body, message.headers)
        if chunk.stream in got.dropped:
            return
        got.audio[chunk.seq] = chunk.pcm
        got.audio_rate = chunk.sample_rate
        got.mark("audio_first")
        if chunk.last:
            got.audio_done = True
            got.mark("audio_last")

    @broker.subscriber(s.REJECTED.all)
    async def on_rejected(event: Rejected) -> None:
        if event.session_id == session_id:
            got.rejected = event
            got.changed.set()

    store = StateStore.from_url(settings.redis_url)
    tracer = provider.get_tracer("twincast.client")
    try:
        await store.ping()
        await open_session(
            store,
            SessionInfo(
                session_id=session_id,
                twin_id=twin or settings.twin,
                guest_id=guest_id,
                scope=scope,
            ),
        )
        await broker.start()
        needed = ["stt"] if audio else []
        needed += ["reasoning", "tts"] if speak else ["reasoning"]
        await wait_ready(bus, needed, timeout_s=30)
        with tracer.start_as_current_span("turn") as span:
            span.set_attribute("twincast.session_id", session_id)
            if text is not None:
                span.set_attribute(f"{PII_PREFIX}question", text)
                got.transcript = text
                await bus.publish(GuestTextSubmitted(session_id=session_id, text=text))
                got.mark("input_end")
            else:
                await stream_speech(bus, session_id, pcm)
                got.mark("input_end")
            await _wait(got, timeout_s=timeout_s, speak=speak)
    finally:
        await broker.stop()
        await store.close()
        if tracer_provider is None:
            provider.shutdown()

    reply = sorted(got.reply, key=lambda c: c.seq)
    wav_path: str | None = None
    if got.audio and out_wav is not None:
        write_wav(out_wav, b"".join(got.audio[k] for k in sorted(got.audio)), rate=got.audio_rate)
        wav_path = str(out_wav)
    return TurnResult(
        session_id=session_id,
        transcript=got.transcript or "",
        reply=" ".join(c.text for c in reply),
        reply_wav=wav_path,
        citations=list({c.source_id: c for r in reply for c in r.citations}.values()),
        deferred=any(r.deferred for r in reply),
        timings_ms=_timings(got.marks),
    )


async def stream_speech(
    bus: Bus,
    session_id: str,
    pcm: bytes,
    *,
    realtime: bool = False,
    tail_silence_ms: int = 0,
    last: bool = True,
) -> float:
    """Publish PCM16 16 kHz as 20 ms frames, paced like a microphone if `realtime`.

    Returns the perf_counter() time of the first frame: in real time, sample n left at
    start + n / 16 kHz.
    """
    subject = s.AUDIO_IN.of(session_id)
    frame = GUEST_SAMPLE_RATE * GUEST_FRAME_MS // 1000 * 2
    pcm = pcm + b"\x00\x00" * (GUEST_SAMPLE_RATE * tail_silence_ms // 1000)
    stream = uuid4().hex
    frames = [pcm[i : i + frame] for i in range(0, len(pcm), frame)] or [b""]
    start = time.perf_counter()
    for seq, part in enumerate(frames):
        if realtime:
            due = start + seq * GUEST_FRAME_MS / 1000
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
        await bus.publish_audio(
            subject,
            PcmChunk(
                pcm=part,
                sample_rate=GUEST_SAMPLE_RATE,
                seq=seq,
                stream=stream,
                last=last and seq == len(frames) - 1,
            ),
        )
    return start


async def _wait(got: _Gathered, *, timeout_s: float, speak: bool = True) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if got.rejected is not None:
            raise TurnFailed(f"{got.rejected.service} rejected the turn: {got.rejected.reason}")
        if got.transcript == "":
            raise TurnFailed("no speech was heard in the audio")
        if "reply_final" in got.marks and (got.audio_done or not speak):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stage = (
                "transcript" if got.transcript is None else "reply" if not got.reply else "speech"
            )
            raise TurnFailed(f"timed out after {timeout_s} s waiting for the {stage}")
        got.changed.clear()
        try:
            await asyncio.wait_for(got.changed.wait(), timeout=remaining)
        except TimeoutError:
            continue


def _timings(marks: dict[str, float]) -> dict[str, float]:
    def span(a: str, b: str) -> float | None:
        return round(1000 * (marks[b] - marks[a]), 1) if a in marks and b in marks else None

    stages = {
        "stt": span("input_end", "transcript"),
        "reasoning": span("transcript" if "transcript" in marks else "input_end", "reply_first"),
        "tts_first_audio": span("reply_first", "audio_first"),
        "first_audio": span("input_end", "audio_first"),
        "reply_complete": span("input_end", "audio_last"),
    }
    return {k: v for k, v in stages.items() if v is not None}
