"""stt: guest audio in; speech start/end, partial and final transcripts out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry import context as otel_context
from opentelemetry import trace

from twincast_shared.bus import EVERY_REPLICA
from twincast_shared.claims import SessionClaims
from twincast_shared.contract import (
    CONTROL_EVENT,
    GUEST_SAMPLE_RATE,
    ControlEvent,
    InputError,
    PcmChunk,
    SessionEnded,
    SpeechEnded,
    SpeechStarted,
    UtteranceTranscribed,
)
from twincast_shared.contract import subjects as s
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.sessions import UnknownSession, get_session
from twincast_shared.tasks import TaskOwner
from twincast_shared.telemetry import PII_PREFIX
from twincast_stt.engine import SttEngine, Transcript
from twincast_stt.settings import SttSettings
from twincast_stt.streaming import Scheduler, SessionStream, StreamSettings
from twincast_stt.turns import TurnSettings

IDLE_SESSION_S = 120.0


class AudioBudget:
    """Token bucket in seconds of audio: a burst ahead of real time is fine, a flood is not."""

    def __init__(self, burst_s: float, rate: float = 1.25) -> None:
        self._burst = burst_s
        self._rate = rate
        self._tokens = burst_s
        self._at = time.monotonic()

    def take(self, seconds: float) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if seconds > self._tokens:
            return False
        self._tokens -= seconds
        return True


@dataclass
class _Session:
    stream: SessionStream
    budget: AudioBudget
    queue: asyncio.Queue[tuple[PcmChunk, otel_context.Context]] = field(
        default_factory=asyncio.Queue
    )
    worker: asyncio.Task[None] | None = None
    turn_span: trace.Span | None = None


class SttService(BaseService):
    def __init__(self, ctx: ServiceContext[SttSettings], engine: SttEngine | None = None) -> None:
        settings = ctx.settings
        self._ctx = ctx
        self._engine = engine or SttEngine(
            model_path=settings.stt_model_path,
            cpu_threads=settings.stt_cpu_threads,
            beam_size=settings.stt_beam_size,
        )
        self._stream_settings = StreamSettings(
            turns=TurnSettings(
                threshold=settings.stt_vad_threshold,
                neg_threshold=max(0.05, settings.stt_vad_threshold - 0.15),
                silence_ms=settings.stt_silence_ms,
                hesitation_ms=max(settings.stt_hesitation_ms, settings.stt_silence_ms),
            ),
            final_pad_s=settings.stt_final_pad_s,
            partial_pad_s=settings.stt_partial_pad_s,
            max_utterance_s=settings.stt_max_utterance_s,
            partial_every_s=settings.stt_partial_every_ms / 1000,
        )
        self._scheduler = Scheduler(self._engine)
        self._claims = SessionClaims(ctx.store, service="stt")
        self._sessions: dict[str, _Session] = {}
        # The owner's voice while they hold the floor: transcribed, but it takes no turns.
        self._owner_sessions: dict[str, _Session] = {}
        self._tasks = TaskOwner("stt")
        self._tracer = ctx.tracer_provider.get_tracer("twincast.stt")
        ctx.bus.on_audio(
            s.AUDIO_IN,
            self.on_audio,
            expect_rate=GUEST_SAMPLE_RATE,
            queue=EVERY_REPLICA,
            accept=self._claims.owns,
        )
        ctx.bus.on_audio(
            s.AUDIO_OWNER,
            self.on_owner_audio,
            expect_rate=GUEST_SAMPLE_RATE,
            queue=EVERY_REPLICA,
            accept=self._claims.owns,
        )
        ctx.bus.on_event(s.CONTROL, CONTROL_EVENT, self.on_control, queue="")

    async def start(self) -> None:
        await asyncio.to_thread(self._engine.load)
        self._scheduler.start()

    async def close(self) -> None:
        await self._tasks.close()
        await self._scheduler.close()
        self._sessions.clear()

    async def on_audio(self, session_id: str, chunk: PcmChunk) -> None:
        await self._feed(self._sessions, session_id, chunk, speaker="guest")

    async def on_owner_audio(self, session_id: str, chunk: PcmChunk) -> None:
        await self._feed(self._owner_sessions, session_id, chunk, speaker="owner")

    async def _feed(
        self,
        sessions: dict[str, _Session],
        session_id: str,
        chunk: PcmChunk,
        *,
        speaker: Literal["guest", "owner"],
    ) -> None:
        session = sessions.get(session_id)
        if session is None:
            try:
                await get_session(self._ctx.store, session_id)
            except UnknownSession:
                raise InputError(
                    f"unknown session {session_id}: open it before sending audio"
                ) from None
            session = sessions[session_id] = self._open(session_id, speaker=speaker)
        if not session.budget.take(chunk.duration_ms / 1000):
            raise InputError(
                "flood: audio arriving faster than real time beyond the burst allowance"
            )
        session.queue.put_nowait((chunk, otel_context.get_current()))
        if session.worker is None or session.worker.done():
            session.worker = self._tasks.spawn(
                self._drain(sessions, session_id, session), name=f"{speaker} {session_id}"
            )

    async def on_control(self, event: ControlEvent) -> None:
        if isinstance(event, SessionEnded):
            for sessions in (self._sessions, self._owner_sessions):
                session = sessions.pop(event.session_id, None)
                if session is not None and session.worker is not None:
                    session.worker.cancel()
            await self._claims.release(event.session_id)

    def _open(self, session_id: str, *, speaker: Literal["guest", "owner"]) -> _Session:
        stream = SessionStream(
            session_id,
            engine=self._engine,
            scheduler=self._scheduler,
            settings=self._stream_settings,
            sink=_Publisher(self) if speaker == "guest" else _OwnerPublisher(self),
            spawn=lambda work: self._tasks.spawn(work, name=f"partial-{session_id}"),  # type: ignore[arg-type]
        )
        return _Session(stream, AudioBudget(self._ctx.settings.stt_flood_burst_s))

    async def _drain(
        self, sessions: dict[str, _Session], session_id: str, session: _Session
    ) -> None:
        """Feeds one session's audio to its stream strictly in arrival order."""
        try:
            while True:
                try:
                    chunk, ctx = await asyncio.wait_for(session.queue.get(), IDLE_SESSION_S)
                except TimeoutError:
                    return
                token = otel_context.attach(ctx)
                try:
                    await session.stream.feed(chunk.pcm, last=chunk.last)
                except Exception as error:
                    await self._ctx.bus.reject(
                        subject=s.AUDIO_IN.of(session_id),
                        reason=f"transcription failed: {type(error).__name__}",
                        body=chunk.pcm,
                        headers=chunk.headers(),
                        session_id=session_id,
                        kind="processing_failed",
                    )
                finally:
                    otel_context.detach(token)
        finally:
            if sessions.get(session_id) is session and session.queue.empty():
                del sessions[session_id]


class _Publisher:
    """Turns stream results into contract events; one span per turn, from speech onset on."""

    speaker: Literal["guest", "owner"] = "guest"

    def __init__(self, service: SttService) -> None:
        self._service = service

    def _bus_session(self, session: str) -> _Session | None:
        return self._service._sessions.get(session)

    async def speech_started(self, session: str, utterance: str, at_ms: float) -> None:
        state = self._bus_session(session)
        span = self._service._tracer.start_span("stt.turn")
        span.set_attribute("twincast.session_id", session)
        span.set_attribute("twincast.utterance_id", utterance)
        if state is not None:
            state.turn_span = span
        with trace.use_span(span, end_on_exit=False):
            await self._service._ctx.bus.publish(
                SpeechStarted(session_id=session, utterance_id=utterance, at_ms=at_ms)
            )

    async def transcript(
        self,
        session: str,
        utterance: str,
        result: Transcript,
        *,
        final: bool,
        speculative: bool = False,
    ) -> None:
        state = self._bus_session(session)
        parent = state.turn_span if state is not None else None
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        name = "stt.transcribe" if final else "stt.partial"
        with self._service._tracer.start_as_current_span(name, context=ctx) as span:
            span.set_attribute("twincast.session_id", session)
            span.set_attribute("twincast.audio_ms", result.audio_ms)
            span.set_attribute("twincast.compute_ms", result.compute_ms)
            span.set_attribute("twincast.context_s", result.context_s)
            span.set_attribute(f"{PII_PREFIX}transcript", result.text)
            await self._service._ctx.bus.publish(
                UtteranceTranscribed(
                    session_id=session,
                    utterance_id=utterance,
                    text=result.text,
                    final=final,
                    speculative=speculative,
                    speaker=self.speaker,
                    audio_ms=result.audio_ms,
                    compute_ms=result.compute_ms,
                )
            )
            if final:
                self._service._ctx.metrics.observe_stage("stt_final", result.compute_ms / 1000)

    async def speech_ended(self, session: str, utterance: str, at_ms: float) -> None:
        state = self._bus_session(session)
        span = state.turn_span if state is not None else None
        ctx = trace.set_span_in_context(span) if span is not None else None
        token = otel_context.attach(ctx) if ctx is not None else None
        try:
            await self._service._ctx.bus.publish(
                SpeechEnded(session_id=session, utterance_id=utterance, at_ms=at_ms)
            )
        finally:
            if token is not None:
                otel_context.detach(token)
            if span is not None:
                span.end()
            if state is not None:
                state.turn_span = None


class _OwnerPublisher(_Publisher):
    """The owner's words, as transcripts marked `owner`: no turns, no speculation."""

    speaker = "owner"

    def _bus_session(self, session: str) -> _Session | None:
        return None  # the owner's words are not part of the guest's turn

    async def transcript(
        self,
        session: str,
        utterance: str,
        result: Transcript,
        *,
        final: bool,
        speculative: bool = False,
    ) -> None:
        if not speculative:
            await super().transcript(session, utterance, result, final=final)

    async def speech_started(self, session: str, utterance: str, at_ms: float) -> None:
        return None

    async def speech_ended(self, session: str, utterance: str, at_ms: float) -> None:
        return None


SPEC = ServiceSpec(name="stt", settings=SttSettings, create=SttService)
