"""stt: guest audio in, transcripts out."""

from __future__ import annotations

import asyncio

from twincast_shared.contract import GUEST_SAMPLE_RATE, PcmChunk, UtteranceTranscribed
from twincast_shared.contract import subjects as s
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.tasks import TaskOwner
from twincast_shared.telemetry import PII_PREFIX
from twincast_stt.engine import SttEngine, UtteranceBuffer, UtteranceTooLong
from twincast_stt.settings import SttSettings


class SttService(BaseService):
    def __init__(self, ctx: ServiceContext[SttSettings], engine: SttEngine | None = None) -> None:
        self._ctx = ctx
        self._settings = ctx.settings
        self._engine = engine or SttEngine(
            model_path=ctx.settings.stt_model_path,
            cpu_threads=ctx.settings.stt_cpu_threads,
            beam_size=ctx.settings.stt_beam_size,
        )
        self._buffers: dict[str, UtteranceBuffer] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks = TaskOwner("stt")
        self._tracer = ctx.tracer_provider.get_tracer("twincast.stt")
        ctx.bus.on_audio(s.AUDIO_IN, self.on_audio, expect_rate=GUEST_SAMPLE_RATE)

    async def start(self) -> None:
        await asyncio.to_thread(self._engine.load)

    async def close(self) -> None:
        await self._tasks.close()

    async def on_audio(self, session: str, chunk: PcmChunk) -> None:
        buffer = self._buffers.setdefault(
            session, UtteranceBuffer(max_seconds=self._settings.stt_max_utterance_s)
        )
        try:
            buffer.add(chunk.stream, chunk.pcm)
        except UtteranceTooLong:
            buffer.clear()
            raise
        if chunk.last:
            pcm = buffer.take()
            del self._buffers[session]
            self._tasks.spawn(self._finish(session, chunk.stream, pcm), name=f"final-{session}")

    async def _finish(self, session: str, utterance: str, pcm: bytes) -> None:
        lock = self._locks.setdefault(session, asyncio.Lock())
        try:
            async with lock:
                await self._transcribe(session, utterance, pcm)
        except Exception as error:
            await self._ctx.bus.reject(
                subject=s.AUDIO_IN.of(session),
                reason=f"transcription failed: {type(error).__name__}",
                body=pcm,
                session_id=session,
            )
        finally:
            if not lock.locked():
                self._locks.pop(session, None)

    async def _transcribe(self, session: str, utterance: str, pcm: bytes) -> None:
        with self._tracer.start_as_current_span("stt.transcribe") as span:
            result = await asyncio.to_thread(self._engine.transcribe, pcm)
            span.set_attribute("twincast.session_id", session)
            span.set_attribute("twincast.audio_ms", result.audio_ms)
            span.set_attribute("twincast.compute_ms", result.compute_ms)
            span.set_attribute(f"{PII_PREFIX}transcript", result.text)
            await self._ctx.bus.publish(
                UtteranceTranscribed(
                    session_id=session,
                    utterance_id=utterance,
                    text=result.text,
                    final=True,
                    language=result.language,
                    audio_ms=result.audio_ms,
                )
            )


SPEC = ServiceSpec(name="stt", settings=SttSettings, create=SttService)
