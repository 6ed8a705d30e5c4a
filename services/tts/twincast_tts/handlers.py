"""tts: the twin's reply in, speech and mouth shapes out, piece by piece as the text arrives.

Stops at once, and drops what is queued, on `Interrupt`, `SessionEnded` or the guest's
`SpeechStarted` (barge-in at the source).
"""

from __future__ import annotations

import asyncio
import time

from opentelemetry.trace import Span

from twincast_shared.bus import EVERY_REPLICA
from twincast_shared.claims import SessionClaims
from twincast_shared.contract import (
    CONTROL_EVENT,
    TURN_EVENT,
    ControlEvent,
    Interrupt,
    MoodEstimated,
    PcmChunk,
    ReplyChunk,
    SessionEnded,
    SpeechStarted,
    TakeOver,
    TurnEvent,
    VisemeTrack,
)
from twincast_shared.contract import subjects as s
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.tasks import TaskOwner
from twincast_shared.telemetry import PII_PREFIX
from twincast_tts.engine import Delivery, Speech, TtsEngine
from twincast_tts.pieces import split_speech
from twincast_tts.queue import Pending, SpeechQueue
from twincast_tts.settings import TtsSettings

# Stop signals reach every replica (no queue group): any of them may be speaking the session.


class TtsService(BaseService):
    def __init__(self, ctx: ServiceContext[TtsSettings], engine: TtsEngine | None = None) -> None:
        self._ctx = ctx
        self._engine = engine or TtsEngine(
            voice_path=ctx.settings.tts_voice_path, threads=ctx.settings.tts_threads
        )
        self._trim = ctx.settings.tts_trim_leading_silence
        self._sessions: dict[str, SpeechQueue] = {}
        self._tasks = TaskOwner("tts")
        self._tracer = ctx.tracer_provider.get_tracer("twincast.tts")
        # Every replica sees every reply chunk; the one holding the session's claim speaks it,
        # so the pieces of a reply are spoken in order, in one place.
        self._claims = SessionClaims(ctx.store, service="tts")
        ctx.bus.on_event(
            s.REPLY, ReplyChunk, self.on_reply, queue=EVERY_REPLICA, accept=self._claims.owns
        )
        ctx.bus.on_event(s.MOOD, MoodEstimated, self.on_mood, queue=EVERY_REPLICA)
        ctx.bus.on_event(s.CONTROL, CONTROL_EVENT, self.on_control, queue=EVERY_REPLICA)
        ctx.bus.on_event(s.TURN, TURN_EVENT, self.on_turn, queue=EVERY_REPLICA)

    async def start(self) -> None:
        await asyncio.to_thread(self._engine.load)

    async def close(self) -> None:
        await self._tasks.close()
        self._sessions.clear()

    def _session(self, session_id: str) -> SpeechQueue:
        return self._sessions.setdefault(session_id, SpeechQueue())

    async def on_reply(self, chunk: ReplyChunk) -> None:
        arrived_ns = time.monotonic_ns()
        session = self._session(chunk.session_id)
        if not session.offer(chunk, arrived_ns):
            return
        if session.idle():
            session.worker = self._tasks.spawn(
                self._speak(chunk.session_id, session), name=f"speak-{chunk.session_id}"
            )

    async def on_mood(self, mood: MoodEstimated) -> None:
        if mood.whose == "guest":
            self._session(mood.session_id).delivery = Delivery.for_mood(
                arousal=mood.arousal, energy=mood.energy, label=mood.label, hurried=mood.hurried
            )

    async def on_control(self, event: ControlEvent) -> None:
        if isinstance(event, Interrupt | TakeOver | SessionEnded):
            # The owner taking the floor stops the twin mid-word, as a barge-in does.
            self._stop(event.session_id)
        if isinstance(event, SessionEnded):
            self._sessions.pop(event.session_id, None)

    async def on_turn(self, event: TurnEvent) -> None:
        if isinstance(event, SpeechStarted):
            self._stop(event.session_id)

    def _stop(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.stop()

    async def _speak(self, session_id: str, session: SpeechQueue) -> None:
        generation = session.generation
        while session.pending and session.generation == generation:
            pending = session.pending.popleft()
            session.speaking = pending.chunk.reply_id
            with self._tracer.start_as_current_span("tts.synthesize") as span:
                span.set_attribute("twincast.session_id", session_id)
                span.set_attribute("twincast.reply_id", pending.chunk.reply_id)
                span.set_attribute("twincast.reply_seq", pending.chunk.seq)
                span.set_attribute(f"{PII_PREFIX}text", pending.chunk.text)
                await self._speak_chunk(session_id, session, pending, generation, span)
            if session.generation != generation:
                return
            session.speaking = None
            if pending.chunk.final:
                session.next_seq.pop(pending.chunk.reply_id, None)

    async def _speak_chunk(
        self, session_id: str, session: SpeechQueue, pending: Pending, generation: int, span: Span
    ) -> None:
        chunk = pending.chunk
        pieces = split_speech(chunk.text, first=session.unheard(chunk.reply_id))
        span.set_attribute("twincast.pieces", len(pieces))
        closed = False
        for i, text in enumerate(pieces):
            opening = session.unheard(chunk.reply_id)
            speeches = self._engine.stream(
                text, session.delivery, trim_leading=self._trim and opening
            )
            while True:
                started_ns = time.monotonic_ns()
                speech = await asyncio.to_thread(next, speeches, None)
                if session.generation != generation:
                    return  # stopped while Piper was busy with this chunk
                if speech is None:
                    break
                synthesized_ns = time.monotonic_ns()
                self._ctx.metrics.observe_stage(
                    "tts_synthesis", 1e-9 * (synthesized_ns - started_ns)
                )
                last = chunk.final and i == len(pieces) - 1 and speech.last
                await self._publish(session_id, session, chunk.reply_id, speech, last=last)
                closed = last
                if opening:
                    self._report_first_audio(
                        span, chunk.reply_id, pending, speech, started_ns, synthesized_ns
                    )
                    opening = False
        if chunk.final and not closed:
            await self._publish(session_id, session, chunk.reply_id, None, last=True)

    async def _publish(
        self,
        session_id: str,
        session: SpeechQueue,
        reply_id: str,
        speech: Speech | None,
        *,
        last: bool,
    ) -> None:
        """The piece's viseme track, then its audio under the same seq (empty closes a reply)."""
        seq = session.take_seq(reply_id)
        rate = speech.sample_rate if speech is not None else self._engine.sample_rate
        await self._ctx.bus.publish(
            VisemeTrack(
                session_id=session_id,
                reply_id=reply_id,
                seq=seq,
                sample_rate=rate,
                visemes=speech.visemes if speech is not None else (),
            )
        )
        await self._ctx.bus.publish_audio(
            s.TTS_AUDIO.of(session_id),
            PcmChunk(
                pcm=speech.pcm if speech is not None else b"",
                sample_rate=rate,
                seq=seq,
                stream=reply_id,
                last=last,
            ),
        )
        # Let the connection write the piece out before the next synthesis takes every core.
        await asyncio.sleep(0)

    def _report_first_audio(
        self,
        span: Span,
        reply_id: str,
        pending: Pending,
        speech: Speech,
        started_ns: int,
        synthesized_ns: int,
    ) -> None:
        """Where the time to a reply's first audio went, in the trace and one log line.

        The two clock readings (CLOCK_MONOTONIC, one clock for every process on a host) let a
        client on the same host split its own measurement into bus hops and service time.
        """
        sent_ns = time.monotonic_ns()
        t = speech.timings
        stages = {
            "first_audio_ms": (sent_ns - pending.arrived_ns) / 1e6,
            "wait_ms": (started_ns - pending.arrived_ns) / 1e6,
            "phonemize_ms": t.phonemize_ms,
            "encoder_ms": t.encoder_ms,
            "flow_ms": t.flow_ms,
            "decoder_ms": t.decoder_ms,
            "onnx_ms": t.onnx_ms,
            "post_ms": t.post_ms,
            "thread_ms": (synthesized_ns - started_ns) / 1e6 - t.total_ms,
            "publish_ms": (sent_ns - synthesized_ns) / 1e6,
            "audio_ms": 1000 * speech.samples / speech.sample_rate,
            "trimmed_ms": 1000 * speech.trimmed_samples / speech.sample_rate,
        }
        for name, value in stages.items():
            span.set_attribute(f"twincast.tts.{name}", round(value, 3))
        self._ctx.metrics.observe_stage("tts_first_audio", stages["first_audio_ms"] / 1000)
        self._ctx.log.info(
            "first audio reply=%s %s arrived_ns=%d sent_ns=%d",
            reply_id,
            " ".join(f"{name}={value:.2f}" for name, value in stages.items()),
            pending.arrived_ns,
            sent_ns,
        )


SPEC = ServiceSpec(name="tts", settings=TtsSettings, create=TtsService)
