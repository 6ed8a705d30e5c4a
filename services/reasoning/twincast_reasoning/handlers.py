"""reasoning on the bus: a guest's words in, the twin's answer out, sentence by sentence.

Decodes events, calls the answering engine and publishes what it returns; knows nothing of
how an answer is found or composed.
"""

from __future__ import annotations

import asyncio
from typing import Literal
from uuid import uuid4

import aiohttp

from twincast_reasoning.answering.composers import (
    Composer,
    Extractive,
    LocalLlama,
    OpenAICompatible,
)
from twincast_reasoning.answering.engine import AnswerEngine, Memory
from twincast_reasoning.answering.extractive import Answer, ExtractiveComposer
from twincast_reasoning.answering.owner import approved, spoken_line
from twincast_reasoning.answering.speculation import Speculations
from twincast_reasoning.retrieval.embeddings import Embedder, SentenceSimilarity
from twincast_reasoning.retrieval.index import TwinIndexCache
from twincast_reasoning.retrieval.store import TwinRepository
from twincast_reasoning.settings import ReasoningSettings
from twincast_shared.contract import (
    CONTROL_EVENT,
    ControlEvent,
    DraftDecided,
    GuestTextSubmitted,
    ReplyChunk,
    Say,
    UtteranceTranscribed,
)
from twincast_shared.contract import subjects as s
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec


class ReasoningService(BaseService):
    def __init__(self, ctx: ServiceContext[ReasoningSettings]) -> None:
        self._ctx = ctx
        self._http: aiohttp.ClientSession | None = None
        self._engine: AnswerEngine | None = None
        self._tracer = ctx.tracer_provider.get_tracer("twincast.reasoning")
        self._speculations = Speculations()
        ctx.bus.on_event(s.STT_FINAL, UtteranceTranscribed, self.on_transcript)
        ctx.bus.on_event(s.STT_PARTIAL, UtteranceTranscribed, self.on_partial)
        ctx.bus.on_event(s.TEXT_IN, GuestTextSubmitted, self.on_text)
        ctx.bus.on_event(s.CONTROL, CONTROL_EVENT, self.on_control)

    async def start(self) -> None:
        settings = self._ctx.settings
        embedder = await asyncio.to_thread(Embedder)
        await asyncio.to_thread(embedder.embed_one, "warm up")
        similarity = SentenceSimilarity(embedder)
        extractive = ExtractiveComposer(
            min_coverage=settings.reasoning_min_coverage,
            max_sentences=settings.reasoning_max_sentences,
            max_words=settings.reasoning_max_words,
            min_similarity=settings.reasoning_min_similarity,
            scorer=similarity,
        )
        composer: Composer = Extractive(extractive)
        if settings.reasoning_composer == "openai":
            assert settings.reasoning_openai_base_url is not None
            self._http = aiohttp.ClientSession()
            key = settings.reasoning_openai_api_key
            composer = OpenAICompatible(
                extractive,
                base_url=settings.reasoning_openai_base_url,
                model=settings.reasoning_openai_model,
                api_key=key.get_secret_value() if key else None,
                session=self._http,
            )
        elif settings.reasoning_composer == "llama":
            composer = LocalLlama(extractive, model_path=settings.reasoning_llama_model_path)
        store = self._ctx.store
        self._engine = AnswerEngine(
            store,
            memory=Memory.in_store(store),
            indexes=TwinIndexCache(TwinRepository(store)),
            composer=composer,
            embed=embedder.embed_one,
            similarity=similarity,
            default_twin=settings.twin,
        )

    @property
    def engine(self) -> AnswerEngine:
        assert self._engine is not None, "reasoning answers only once started"
        return self._engine

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        if self._http is not None:
            await self._http.close()

    async def on_partial(self, event: UtteranceTranscribed) -> None:
        """Answer a speculative transcript at once, provisionally and without remembering it:
        the answer is ready when the turn ends, and nothing counts unless it does."""
        if not event.speculative or event.speaker == "owner" or not event.text.strip():
            return
        engine = self.engine
        if await engine.owner_holds(event.session_id) or await engine.shadowing(event.session_id):
            return
        speculation = self._speculations.begin((event.session_id, event.utterance_id), event.text)
        if speculation is None:
            return
        try:
            with self._tracer.start_as_current_span("reasoning.speculate") as span:
                composed = await engine.speculate(event.session_id, event.text, span=span)
                await self._publish(
                    event.session_id,
                    composed.answer,
                    in_reply_to=event.event_id,
                    utterance_id=event.utterance_id,
                    provisional=True,
                )
                speculation.sent = composed
        finally:
            speculation.done.set()

    async def on_transcript(self, event: UtteranceTranscribed) -> None:
        if not event.text.strip():
            return
        engine = self.engine
        if event.speaker == "owner":
            await engine.hear_owner(event.session_id, event.text)
            return
        if await engine.owner_holds(event.session_id):
            return
        key = (event.session_id, event.utterance_id)
        speculation = await self._speculations.take(key, event.text)
        if speculation is not None:
            await speculation.done.wait()
            if speculation.sent is not None:
                await engine.confirm(speculation.sent, event.text)
                return
        await self.answer(
            event.session_id,
            event.text,
            in_reply_to=event.event_id,
            utterance_id=event.utterance_id,
        )

    async def on_text(self, event: GuestTextSubmitted) -> None:
        if await self.engine.owner_holds(event.session_id):
            return
        await self.answer(event.session_id, event.text, in_reply_to=event.event_id)

    async def on_control(self, event: ControlEvent) -> None:
        if isinstance(event, Say):
            said = spoken_line(event.text)
            await self._publish(event.session_id, said, in_reply_to=event.event_id, author="owner")
        elif isinstance(event, DraftDecided):
            await self._decide(event)

    async def _decide(self, event: DraftDecided) -> None:
        engine = self.engine
        if event.decision != "reject" and await engine.owner_holds(event.session_id):
            return  # taken between the console's check and now: pending until handed back
        held = await engine.take_draft(event.session_id, event.draft_id)
        if held is None or event.decision == "reject":
            return
        draft = held.draft
        answer = approved(draft, event.text if event.decision == "edit" else None)
        await self._publish(
            event.session_id,
            answer,
            in_reply_to=draft.in_reply_to,
            utterance_id=draft.utterance_id,
            author="owner" if event.decision == "edit" else "twin",
        )
        session = await engine.session(event.session_id)
        await engine.remember(session, draft.question, held.query, answer)

    async def answer(
        self,
        session_id: str,
        question: str,
        *,
        in_reply_to: str,
        utterance_id: str | None = None,
    ) -> None:
        engine = self.engine
        with self._tracer.start_as_current_span("reasoning.answer") as span:
            composed = await engine.answer(session_id, question, span=span)
            if await engine.shadowing(session_id):
                draft = await engine.hold_draft(
                    composed, question, in_reply_to=in_reply_to, utterance_id=utterance_id
                )
                await self._ctx.bus.publish(draft)
                return
            await self._publish(
                session_id, composed.answer, in_reply_to=in_reply_to, utterance_id=utterance_id
            )
            await engine.remember(composed.session, question, composed.query, composed.answer)

    async def _publish(
        self,
        session_id: str,
        answer: Answer,
        *,
        in_reply_to: str,
        utterance_id: str | None = None,
        provisional: bool = False,
        author: Literal["twin", "owner"] = "twin",
    ) -> None:
        reply_id = uuid4().hex
        last = len(answer.sentences) - 1
        for seq, sentence in enumerate(answer.sentences):
            await self._ctx.bus.publish(
                ReplyChunk(
                    session_id=session_id,
                    reply_id=reply_id,
                    in_reply_to=in_reply_to,
                    utterance_id=utterance_id,
                    provisional=provisional,
                    seq=seq,
                    text=sentence,
                    citations=answer.citations,
                    expression=answer.expression,
                    deferred=answer.deferred,
                    final=seq == last,
                    author=author,
                )
            )


SPEC = ServiceSpec(name="reasoning", settings=ReasoningSettings, create=ReasoningService)
