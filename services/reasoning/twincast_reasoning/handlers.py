"""reasoning: a guest's words in, the twin's answer out, sentence by sentence."""

from __future__ import annotations

import time
from uuid import uuid4

from twincast_reasoning.engine import ExtractiveComposer, KeywordIndex
from twincast_reasoning.settings import ReasoningSettings
from twincast_reasoning.twins import TwinRepository
from twincast_shared.contract import GuestTextSubmitted, ReplyChunk, UtteranceTranscribed
from twincast_shared.contract import subjects as s
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.sessions import SessionInfo, UnknownSession, get_session, next_turn
from twincast_shared.telemetry import PII_PREFIX
from twincast_shared.twins import TwinProfile


class UnknownTwin(LookupError):
    pass


class ReasoningService(BaseService):
    def __init__(self, ctx: ServiceContext[ReasoningSettings]) -> None:
        self._ctx = ctx
        self._twins = TwinRepository(ctx.store)
        self._composer = ExtractiveComposer(
            min_coverage=ctx.settings.reasoning_min_coverage,
            max_sentences=ctx.settings.reasoning_max_sentences,
        )
        self._indexes: dict[str, tuple[int, TwinProfile, KeywordIndex]] = {}
        self._tracer = ctx.tracer_provider.get_tracer("twincast.reasoning")
        ctx.bus.on_event(s.STT_FINAL, UtteranceTranscribed, self.on_transcript)
        ctx.bus.on_event(s.TEXT_IN, GuestTextSubmitted, self.on_text)

    async def close(self) -> None:
        self._indexes.clear()

    async def on_transcript(self, event: UtteranceTranscribed) -> None:
        if event.text.strip():
            await self.answer(event.session_id, event.text, in_reply_to=event.event_id)

    async def on_text(self, event: GuestTextSubmitted) -> None:
        await self.answer(event.session_id, event.text, in_reply_to=event.event_id)

    async def _session(self, session_id: str) -> SessionInfo:
        try:
            return await get_session(self._ctx.store, session_id)
        except UnknownSession:
            # A session nobody opened hears only what the public may hear.
            return SessionInfo(session_id=session_id, twin_id=self._ctx.settings.twin)

    async def _index(self, twin_id: str) -> tuple[TwinProfile, KeywordIndex]:
        version = await self._twins.version(twin_id)
        cached = self._indexes.get(twin_id)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        profile = await self._twins.profile(twin_id)
        if profile is None:
            raise UnknownTwin(twin_id)
        index = KeywordIndex(
            await self._twins.passages(twin_id),
            ignore=(profile.display_name, profile.owner_first_name),
        )
        self._indexes[twin_id] = (version, profile, index)
        return profile, index

    async def answer(self, session_id: str, question: str, *, in_reply_to: str) -> None:
        with self._tracer.start_as_current_span("reasoning.answer") as span:
            started = time.perf_counter()
            session = await self._session(session_id)
            profile, index = await self._index(session.twin_id)
            turn = await next_turn(self._ctx.store, session_id)
            hits = index.search(question, scope=session.scope)
            answer = self._composer.compose(
                profile=profile, question=question, hits=hits, first_turn=turn == 1
            )
            span.set_attribute("twincast.session_id", session_id)
            span.set_attribute("twincast.scope", session.scope)
            span.set_attribute("twincast.deferred", answer.deferred)
            span.set_attribute("twincast.passages_retrieved", len(hits))
            span.set_attribute(f"{PII_PREFIX}question", question)
            span.set_attribute(f"{PII_PREFIX}reply", " ".join(answer.sentences))
            span.set_attribute("twincast.compose_ms", 1000 * (time.perf_counter() - started))
            reply_id = uuid4().hex
            last = len(answer.sentences) - 1
            for seq, sentence in enumerate(answer.sentences):
                await self._ctx.bus.publish(
                    ReplyChunk(
                        session_id=session_id,
                        reply_id=reply_id,
                        in_reply_to=in_reply_to,
                        seq=seq,
                        text=sentence,
                        citations=answer.citations,
                        expression=answer.expression,
                        deferred=answer.deferred,
                        final=seq == last,
                    )
                )


SPEC = ServiceSpec(name="reasoning", settings=ReasoningSettings, create=ReasoningService)
