"""tts: the twin's reply in, speech and mouth shapes out; stops at once on Interrupt."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from twincast_shared.contract import (
    CONTROL_EVENT,
    ControlEvent,
    Interrupt,
    MoodEstimated,
    PcmChunk,
    ReplyChunk,
    SessionEnded,
    VisemeTrack,
)
from twincast_shared.contract import subjects as s
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.tasks import TaskOwner
from twincast_tts.engine import Delivery, TtsEngine
from twincast_tts.settings import TtsSettings


@dataclass
class _Session:
    queue: asyncio.Queue[ReplyChunk] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None
    delivery: Delivery = field(default_factory=Delivery)
    seq: dict[str, int] = field(default_factory=dict)


class TtsService(BaseService):
    def __init__(self, ctx: ServiceContext[TtsSettings], engine: TtsEngine | None = None) -> None:
        self._ctx = ctx
        self._engine = engine or TtsEngine(voice_path=ctx.settings.tts_voice_path)
        self._sessions: dict[str, _Session] = {}
        self._tasks = TaskOwner("tts")
        self._tracer = ctx.tracer_provider.get_tracer("twincast.tts")
        ctx.bus.on_event(s.REPLY, ReplyChunk, self.on_reply)
        ctx.bus.on_event(s.MOOD, MoodEstimated, self.on_mood)
        ctx.bus.on_event(s.CONTROL, CONTROL_EVENT, self.on_control)

    async def start(self) -> None:
        await asyncio.to_thread(self._engine.load)

    async def close(self) -> None:
        await self._tasks.close()
        self._sessions.clear()

    def _session(self, session_id: str) -> _Session:
        return self._sessions.setdefault(session_id, _Session())

    async def on_reply(self, chunk: ReplyChunk) -> None:
        session = self._session(chunk.session_id)
        session.queue.put_nowait(chunk)
        if session.worker is None or session.worker.done():
            session.worker = self._tasks.spawn(
                self._speak(chunk.session_id, session), name=f"speak-{chunk.session_id}"
            )

    async def on_mood(self, mood: MoodEstimated) -> None:
        if mood.whose == "guest":
            # Match a lively guest with a slightly quicker pace, a low one with a calmer pace.
            self._session(mood.session_id).delivery = Delivery(
                length_scale=1.0 - 0.1 * mood.arousal, noise_scale=0.6 + 0.15 * mood.energy
            )

    async def on_control(self, event: ControlEvent) -> None:
        if isinstance(event, Interrupt | SessionEnded):
            session = self._sessions.pop(event.session_id, None)
            if session is not None and session.worker is not None:
                session.worker.cancel()

    async def _speak(self, session_id: str, session: _Session) -> None:
        while not session.queue.empty():
            chunk = session.queue.get_nowait()
            with self._tracer.start_as_current_span("tts.synthesize") as span:
                speech = await asyncio.to_thread(
                    self._engine.synthesize, chunk.text, session.delivery
                )
                span.set_attribute("twincast.session_id", session_id)
                span.set_attribute("twincast.chunks", len(speech))
                span.set_attribute("twincast.compute_ms", sum(p.compute_ms for p in speech))
                subject = s.TTS_AUDIO.of(session_id)
                if not speech and chunk.final:
                    await self._ctx.bus.publish_audio(
                        subject,
                        PcmChunk(
                            pcm=b"",
                            sample_rate=self._engine.sample_rate,
                            seq=session.seq.get(chunk.reply_id, 0),
                            stream=chunk.reply_id,
                            last=True,
                        ),
                    )
                for i, piece in enumerate(speech):
                    seq = session.seq.get(chunk.reply_id, 0)
                    session.seq[chunk.reply_id] = seq + 1
                    await self._ctx.bus.publish(
                        VisemeTrack(
                            session_id=session_id,
                            reply_id=chunk.reply_id,
                            seq=seq,
                            sample_rate=piece.sample_rate,
                            visemes=tuple(piece.visemes),
                        )
                    )
                    await self._ctx.bus.publish_audio(
                        subject,
                        PcmChunk(
                            pcm=piece.pcm,
                            sample_rate=piece.sample_rate,
                            seq=seq,
                            stream=chunk.reply_id,
                            last=chunk.final and i == len(speech) - 1,
                        ),
                    )
            if chunk.final:
                session.seq.pop(chunk.reply_id, None)


SPEC = ServiceSpec(name="tts", settings=TtsSettings, create=TtsService)
