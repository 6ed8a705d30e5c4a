"""reasoning: a guest's words in, the twin's answer out, sentence by sentence."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal
from uuid import uuid4

import aiohttp
from opentelemetry.trace import Span

from twincast_reasoning.composers import (
    Composer,
    ComposeRequest,
    Extractive,
    LocalLlama,
    OpenAICompatible,
)
from twincast_reasoning.embeddings import Embedder, SentenceSimilarity
from twincast_reasoning.engine import Answer, ExtractiveComposer
from twincast_reasoning.index import HybridIndex, TwinIndexCache
from twincast_reasoning.memory import (
    ConversationMemory,
    Inbox,
    PeopleMemory,
    Promise,
    Turn,
    expand_followup,
)
from twincast_reasoning.owner import (
    Draft,
    Drafts,
    OwnerWords,
    approved,
    drafted,
    owner_hits,
    spoken_line,
)
from twincast_reasoning.settings import ReasoningSettings
from twincast_reasoning.tone import adapt
from twincast_reasoning.twins import TwinRepository
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
from twincast_shared.floor import Floor, Shadow
from twincast_shared.moods import get_guest_mood
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.sessions import (
    SessionInfo,
    UnknownSession,
    get_session,
    next_turn,
    peek_turn,
)
from twincast_shared.telemetry import PII_PREFIX
from twincast_shared.twins import TwinProfile


class UnknownTwin(LookupError):
    pass


@dataclass
class _Speculation:
    """A reply composed for a speculative transcript and sent provisionally."""

    text: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sent: tuple[SessionInfo, str, Answer] | None = None


MAX_SPECULATIONS = 256
MAX_OWNER_HITS = 2
SPECULATION_GRACE_S = 0.1


class ReasoningService(BaseService):
    def __init__(self, ctx: ServiceContext[ReasoningSettings]) -> None:
        self._ctx = ctx
        settings = ctx.settings
        self._twins = TwinRepository(ctx.store)
        self._conversation = ConversationMemory(ctx.store)
        self._people = PeopleMemory(ctx.store)
        self._inbox = Inbox(ctx.store)
        self._floor = Floor(ctx.store)
        self._shadow = Shadow(ctx.store)
        self._owner_words = OwnerWords(ctx.store)
        self._drafts = Drafts(ctx.store)
        self._extractive = ExtractiveComposer(
            min_coverage=settings.reasoning_min_coverage,
            max_sentences=settings.reasoning_max_sentences,
            max_words=settings.reasoning_max_words,
            min_similarity=settings.reasoning_min_similarity,
            scorer=self._similarity,
        )
        self._http: aiohttp.ClientSession | None = None
        self._composer: Composer = Extractive(self._extractive)
        self._indexes = TwinIndexCache(self._twins)
        self._embedder: Embedder | None = None
        self._sentences: SentenceSimilarity | None = None
        self._tracer = ctx.tracer_provider.get_tracer("twincast.reasoning")
        self._speculations: OrderedDict[tuple[str, str], _Speculation] = OrderedDict()
        ctx.bus.on_event(s.STT_FINAL, UtteranceTranscribed, self.on_transcript)
        ctx.bus.on_event(s.STT_PARTIAL, UtteranceTranscribed, self.on_partial)
        ctx.bus.on_event(s.TEXT_IN, GuestTextSubmitted, self.on_text)
        ctx.bus.on_event(s.CONTROL, CONTROL_EVENT, self.on_control)

    async def start(self) -> None:
        settings = self._ctx.settings
        self._embedder = await asyncio.to_thread(Embedder)
        await asyncio.to_thread(self._embedder.embed_one, "warm up")
        self._sentences = SentenceSimilarity(self._embedder)
        if settings.reasoning_composer == "openai":
            assert settings.reasoning_openai_base_url is not None
            self._http = aiohttp.ClientSession()
            key = settings.reasoning_openai_api_key
            self._composer = OpenAICompatible(
                self._extractive,
                base_url=settings.reasoning_openai_base_url,
                model=settings.reasoning_openai_model,
                api_key=key.get_secret_value() if key else None,
                session=self._http,
            )
        elif settings.reasoning_composer == "llama":
            self._composer = LocalLlama(
                self._extractive, model_path=settings.reasoning_llama_model_path
            )

    def _similarity(self, question: str, sentences: Sequence[str]) -> Sequence[float]:
        if self._sentences is None:
            return [0.0] * len(sentences)
        return self._sentences(question, sentences)

    async def close(self) -> None:
        self._indexes.clear()
        if self._http is not None:
            await self._http.close()

    async def on_partial(self, event: UtteranceTranscribed) -> None:
        """Answer a speculative transcript at once, provisionally and without remembering it:
        the answer is ready when the turn ends, and nothing counts unless it does."""
        if not event.speculative or event.speaker == "owner" or not event.text.strip():
            return
        if await self._owner_holds(event.session_id) or await self._shadow.is_on(event.session_id):
            return
        key = (event.session_id, event.utterance_id)
        speculation = self._speculations.get(key)
        if speculation is not None and speculation.text == event.text:
            return
        speculation = self._speculations[key] = _Speculation(event.text)
        while len(self._speculations) > MAX_SPECULATIONS:
            self._speculations.popitem(last=False)
        try:
            with self._tracer.start_as_current_span("reasoning.speculate") as span:
                session = await self._session(event.session_id)
                turn = await peek_turn(self._ctx.store, event.session_id) + 1
                query, answer = await self._compose(session, event.text, turn=turn, span=span)
                await self._publish(
                    event.session_id,
                    answer,
                    in_reply_to=event.event_id,
                    utterance_id=event.utterance_id,
                    provisional=True,
                )
                speculation.sent = (session, query, answer)
        finally:
            speculation.done.set()

    async def on_transcript(self, event: UtteranceTranscribed) -> None:
        if not event.text.strip():
            return
        if event.speaker == "owner":
            # The owner, in their own voice, while holding the floor: part of the
            # conversation the twin picks up when the floor comes back.
            await self._owner_words.add(event.session_id, event.text)
            return
        if await self._owner_holds(event.session_id):
            return
        key = (event.session_id, event.utterance_id)
        speculation = await self._speculation_for(key, event.text)
        if speculation is not None:
            await speculation.done.wait()
            if speculation.sent is not None:
                # The provisional reply stands; the turn and its memory count from now.
                session, query, answer = speculation.sent
                await next_turn(self._ctx.store, event.session_id)
                await self._remember(session, event.text, query, answer)
                return
        await self.answer(
            event.session_id,
            event.text,
            in_reply_to=event.event_id,
            utterance_id=event.utterance_id,
        )

    async def _speculation_for(self, key: tuple[str, str], text: str) -> _Speculation | None:
        """The speculation on exactly these words, if there is one.

        The guest may have paused more than once in the utterance: the speculation on their
        last pause is sent just before the final transcript, and may still be on its way in.
        """
        deadline = time.monotonic() + SPECULATION_GRACE_S
        while (speculation := self._speculations.get(key)) is not None:
            if speculation.text == text:
                return self._speculations.pop(key)
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.005)
        self._speculations.pop(key, None)
        return None

    async def on_text(self, event: GuestTextSubmitted) -> None:
        if await self._owner_holds(event.session_id):
            return
        await self.answer(event.session_id, event.text, in_reply_to=event.event_id)

    async def _owner_holds(self, session_id: str) -> bool:
        """While the owner holds the floor, the twin does not answer."""
        return await self._floor.holder(session_id) is not None

    async def on_control(self, event: ControlEvent) -> None:
        if isinstance(event, Say):
            said = spoken_line(event.text)
            await self._publish(event.session_id, said, in_reply_to=event.event_id, author="owner")
        elif isinstance(event, DraftDecided):
            await self._decide(event)

    async def _decide(self, event: DraftDecided) -> None:
        if event.decision != "reject" and await self._owner_holds(event.session_id):
            return  # taken between the console's check and now: pending until handed back
        held = await self._drafts.take(event.session_id, event.draft_id)
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
        session = await self._session(event.session_id)
        await self._remember(session, draft.question, held.query, answer)

    async def _session(self, session_id: str) -> SessionInfo:
        try:
            return await get_session(self._ctx.store, session_id)
        except UnknownSession:
            # A session nobody opened hears only what the public may hear.
            return SessionInfo(session_id=session_id, twin_id=self._ctx.settings.twin)

    async def _index(self, twin_id: str) -> tuple[TwinProfile, HybridIndex]:
        index = await self._indexes.get(twin_id)
        if index.profile is None:
            raise UnknownTwin(twin_id)
        return index.profile, index

    async def answer(
        self,
        session_id: str,
        question: str,
        *,
        in_reply_to: str,
        utterance_id: str | None = None,
    ) -> None:
        with self._tracer.start_as_current_span("reasoning.answer") as span:
            session = await self._session(session_id)
            turn = await next_turn(self._ctx.store, session_id)
            query, answer = await self._compose(session, question, turn=turn, span=span)
            if await self._shadow.is_on(session_id):
                draft = drafted(
                    answer,
                    session=session_id,
                    draft_id=uuid4().hex,
                    question=question,
                    in_reply_to=in_reply_to,
                    utterance_id=utterance_id,
                )
                await self._drafts.hold(Draft(draft=draft, query=query))
                await self._ctx.bus.publish(draft)
                return
            await self._publish(
                session_id, answer, in_reply_to=in_reply_to, utterance_id=utterance_id
            )
            await self._remember(session, question, query, answer)

    async def _compose(
        self, session: SessionInfo, question: str, *, turn: int, span: Span
    ) -> tuple[str, Answer]:
        """The answer to `question` on the session's `turn`; changes nothing in the store."""
        started = time.perf_counter()
        session_id = session.session_id
        profile, index = await self._index(session.twin_id)
        history = await self._conversation.recent(session_id)
        query = expand_followup(question, history)
        assert self._embedder is not None
        vector = await asyncio.to_thread(self._embedder.embed_one, query)
        hits = index.search(query, vector, scope=session.scope)
        said = await self._owner_words.all(session_id)
        if said:
            top = max((hit.score for hit in hits), default=0.0)
            # The guest's own words, not the follow-up expansion: the owner just spoke, so
            # what they said is matched against the question as asked.
            similarity = list(self._similarity(question, said))
            first = profile.owner_first_name if profile else session.twin_id
            live = owner_hits(session_id, first, question, said, similarity, top_score=top)
            hits = [*live[:MAX_OWNER_HITS], *hits]
        guest_name = await self._returning_guest(session, first_turn=turn == 1)
        answer = await self._composer.compose(
            ComposeRequest(
                profile=profile,
                question=question,
                query=query,
                hits=hits,
                first_turn=turn == 1,
                guest_name=guest_name,
            )
        )
        mood = await get_guest_mood(self._ctx.store, session_id)
        answer = adapt(answer, question=question, mood=mood)
        span.set_attribute("twincast.session_id", session_id)
        span.set_attribute("twincast.guest_mood", mood.label if mood else "unknown")
        span.set_attribute("twincast.scope", session.scope)
        span.set_attribute("twincast.composer", self._composer.name)
        span.set_attribute("twincast.deferred", answer.deferred)
        span.set_attribute("twincast.passages_retrieved", len(hits))
        span.set_attribute("twincast.sentences_dropped", answer.dropped)
        span.set_attribute(f"{PII_PREFIX}question", question)
        span.set_attribute(f"{PII_PREFIX}reply", " ".join(answer.sentences))
        span.set_attribute("twincast.compose_ms", 1000 * (time.perf_counter() - started))
        return query, answer

    async def _returning_guest(self, session: SessionInfo, *, first_turn: bool) -> str | None:
        if not first_turn or session.guest_id is None:
            return None
        person = await self._people.get(session.twin_id, session.guest_id)
        return person.name if person is not None and person.sessions else None

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

    async def _remember(
        self, session: SessionInfo, question: str, query: str, answer: Answer
    ) -> None:
        await self._conversation.remember(
            session.session_id,
            Turn(
                question=question,
                query=query,
                reply=list(answer.body),
                sources=[c.source_id for c in answer.citations],
                deferred=answer.deferred,
            ),
        )
        if answer.deferred:
            await self._inbox.add(
                session.twin_id, Promise(question=question, session_id=session.session_id)
            )
        if session.guest_id is not None:
            await self._people.record(
                session.twin_id,
                session.guest_id,
                session_id=session.session_id,
                question=question,
                deferred=answer.deferred,
            )


SPEC = ServiceSpec(name="reasoning", settings=ReasoningSettings, create=ReasoningService)
