"""The answering pipeline: a guest's question into the twin's answer, and what the twin keeps
of it (the conversation, the people it met, the promises it made, drafts the owner decides).

Knows nothing of the bus: `handlers.py` decodes the events, calls this engine and publishes
what it returns. Its clients (store, index cache, composer, memories, embedder) are passed in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import uuid4

import numpy as np
from opentelemetry.trace import Span

from twincast_reasoning.answering.composers import Composer, ComposeRequest
from twincast_reasoning.answering.extractive import Answer
from twincast_reasoning.answering.memory import (
    ConversationMemory,
    Inbox,
    PeopleMemory,
    Promise,
    Turn,
    expand_followup,
)
from twincast_reasoning.answering.owner import Draft, Drafts, OwnerWords, drafted, owner_hits
from twincast_reasoning.answering.tone import adapt
from twincast_reasoning.retrieval.index import HybridIndex, TwinIndexCache
from twincast_reasoning.retrieval.store import UnknownTwin
from twincast_shared.contract import ReplyDrafted
from twincast_shared.floor import Floor, Shadow
from twincast_shared.moods import get_guest_mood
from twincast_shared.sessions import SessionInfo, UnknownSession, get_session, next_turn, peek_turn
from twincast_shared.store import StateStore
from twincast_shared.telemetry import PII_PREFIX
from twincast_shared.twins import TwinProfile

MAX_OWNER_HITS = 2

Embed = Callable[[str], np.ndarray]
"""A text's vector (the embedder's `embed_one`); called off the event loop."""
Similarity = Callable[[str, Sequence[str]], Sequence[float]]
"""(question, sentences) → how close each sentence is to the question in meaning."""


@dataclass(frozen=True, slots=True)
class Memory:
    """What the engine reads and keeps per twin and session, in the state store."""

    conversation: ConversationMemory
    people: PeopleMemory
    inbox: Inbox
    owner_words: OwnerWords
    drafts: Drafts
    floor: Floor
    shadow: Shadow

    @classmethod
    def in_store(cls, store: StateStore) -> Memory:
        return cls(
            conversation=ConversationMemory(store),
            people=PeopleMemory(store),
            inbox=Inbox(store),
            owner_words=OwnerWords(store),
            drafts=Drafts(store),
            floor=Floor(store),
            shadow=Shadow(store),
        )


@dataclass(frozen=True, slots=True)
class Composed:
    """An answer and what it was composed for: the session, and what retrieval searched for."""

    session: SessionInfo
    query: str
    answer: Answer


class AnswerEngine:
    def __init__(
        self,
        store: StateStore,
        *,
        memory: Memory,
        indexes: TwinIndexCache,
        composer: Composer,
        embed: Embed,
        similarity: Similarity,
        default_twin: str,
    ) -> None:
        """`default_twin`: the twin a session nobody opened talks to."""
        self._store = store
        self._memory = memory
        self._indexes = indexes
        self._composer = composer
        self._embed = embed
        self._similarity = similarity
        self._default_twin = default_twin

    def close(self) -> None:
        self._indexes.clear()

    async def owner_holds(self, session_id: str) -> bool:
        """While the owner holds the floor, the twin does not answer."""
        return await self._memory.floor.holder(session_id) is not None

    async def shadowing(self, session_id: str) -> bool:
        """Whether the owner approves each answer before it is said."""
        return await self._memory.shadow.is_on(session_id)

    async def hear_owner(self, session_id: str, text: str) -> None:
        """The owner, in their own voice, while holding the floor: part of the conversation
        the twin picks up when the floor comes back."""
        await self._memory.owner_words.add(session_id, text)

    async def speculate(self, session_id: str, question: str, *, span: Span) -> Composed:
        """The answer to a question the guest may not have finished; counts nothing, so the
        turn and its memory are only taken by `confirm` once the guest has."""
        session = await self.session(session_id)
        turn = await peek_turn(self._store, session_id) + 1
        query, answer = await self._compose(session, question, turn=turn, span=span)
        return Composed(session, query, answer)

    async def confirm(self, composed: Composed, question: str) -> None:
        """A speculative answer stands: its turn and its memory count from now."""
        await next_turn(self._store, composed.session.session_id)
        await self.remember(composed.session, question, composed.query, composed.answer)

    async def answer(self, session_id: str, question: str, *, span: Span) -> Composed:
        """The answer on the session's next turn; the caller says it (then `remember`s it) or
        holds it as a draft."""
        session = await self.session(session_id)
        turn = await next_turn(self._store, session_id)
        query, answer = await self._compose(session, question, turn=turn, span=span)
        return Composed(session, query, answer)

    async def hold_draft(
        self,
        composed: Composed,
        question: str,
        *,
        in_reply_to: str,
        utterance_id: str | None,
    ) -> ReplyDrafted:
        """Keep the answer for the owner to approve, edit or reject; the draft to show them."""
        draft = drafted(
            composed.answer,
            session=composed.session.session_id,
            draft_id=uuid4().hex,
            question=question,
            in_reply_to=in_reply_to,
            utterance_id=utterance_id,
        )
        await self._memory.drafts.hold(Draft(draft=draft, query=composed.query))
        return draft

    async def take_draft(self, session_id: str, draft_id: str) -> Draft | None:
        """The held draft, removed so that it is decided once; None if unknown or decided."""
        return await self._memory.drafts.take(session_id, draft_id)

    async def session(self, session_id: str) -> SessionInfo:
        try:
            return await get_session(self._store, session_id)
        except UnknownSession:
            # A session nobody opened hears only what the public may hear.
            return SessionInfo(session_id=session_id, twin_id=self._default_twin)

    async def _index(self, twin_id: str) -> tuple[TwinProfile, HybridIndex]:
        index = await self._indexes.get(twin_id)
        if index.profile is None:
            raise UnknownTwin(twin_id)
        return index.profile, index

    async def _compose(
        self, session: SessionInfo, question: str, *, turn: int, span: Span
    ) -> tuple[str, Answer]:
        """The answer to `question` on the session's `turn`; changes nothing in the store."""
        started = time.perf_counter()
        session_id = session.session_id
        profile, index = await self._index(session.twin_id)
        history = await self._memory.conversation.recent(session_id)
        query = expand_followup(question, history)
        vector = await asyncio.to_thread(self._embed, query)
        hits = index.search(query, vector, scope=session.scope)
        said = await self._memory.owner_words.all(session_id)
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
        mood = await get_guest_mood(self._store, session_id)
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
        person = await self._memory.people.get(session.twin_id, session.guest_id)
        return person.name if person is not None and person.sessions else None

    async def remember(
        self, session: SessionInfo, question: str, query: str, answer: Answer
    ) -> None:
        """What the twin keeps of an answer it said: the turn, a promise to pass the question
        on if it deferred, and the guest's visit."""
        await self._memory.conversation.remember(
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
            await self._memory.inbox.add(
                session.twin_id, Promise(question=question, session_id=session.session_id)
            )
        if session.guest_id is not None:
            await self._memory.people.record(
                session.twin_id,
                session.guest_id,
                session_id=session.session_id,
                question=question,
                deferred=answer.deferred,
            )
