"""What the twin remembers: the conversation so far, and each person it has talked to.

Both are the owner's and the guests' personal data: kept in the state store, readable and
erasable by the owner (`twincast twin people`), never logged.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from twincast_reasoning.words import sentences, terms
from twincast_shared.store import StateStore, key

HISTORY_TURNS: Final = 8
HISTORY_TTL_S: Final = 24 * 3600
MAX_REMEMBERED_QUESTIONS: Final = 50

_ORDINALS: Final = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "last": -1,
}
_FOLLOWUP = re.compile(
    r"^\s*(and|but|so|what about|how about|why|how|tell me more|more|go on|really)\b"
    r"|\b(it|that|this|those|these|they|them|one|ones|there|he|she)\b",
    re.I,
)
_NAME = re.compile(r"\b(?i:my name is|i am|i'm|this is|call me)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)")
_NOT_NAMES: Final = frozenset({"Not", "Just", "Very", "So", "Here", "Sorry", "Happy", "Fine"})


def _now() -> datetime:
    return datetime.now(UTC)


class Turn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str
    reply: list[str]
    sources: list[str] = Field(default_factory=list)
    query: str = ""
    deferred: bool = False
    at: datetime = Field(default_factory=_now)


class Promise(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str
    session_id: str
    at: datetime = Field(default_factory=_now)
    status: Literal["pending", "passed"] = "pending"


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guest_id: str
    name: str | None = None
    first_seen: datetime = Field(default_factory=_now)
    last_seen: datetime = Field(default_factory=_now)
    sessions: list[str] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list)
    topics: dict[str, int] = Field(default_factory=dict)
    promises: list[Promise] = Field(default_factory=list)

    def top_topics(self, n: int = 5) -> list[str]:
        return [t for t, _ in sorted(self.topics.items(), key=lambda kv: -kv[1])[:n]]


def looks_like_followup(question: str) -> bool:
    return not terms(question) or bool(_FOLLOWUP.search(question))


def _ordinal_sentence(question: str, previous: Turn) -> str | None:
    """ "the second one" → the sentence of the last reply that names or holds the second item."""
    lowered = question.lower()
    for word, index in _ORDINALS.items():
        if re.search(rf"\b{word}\b", lowered):
            said = [s for r in previous.reply for s in sentences(r)]
            named = [s for s in said if re.search(rf"\b{word}\b", s.lower())]
            if named:
                return named[0]
            if said:
                return said[index if index < 0 else min(index, len(said)) - 1]
    return None


def without_introductions(question: str) -> str:
    """The question minus greetings and self-introductions ("Hi, I'm Ada."), which carry no
    topic and would dilute retrieval; unchanged if nothing else is left."""
    kept = [s for s in sentences(question) if name_in(s) is None and terms(s) != ["hi"]]
    return " ".join(kept) or question


def expand_followup(question: str, history: list[Turn]) -> str:
    """The retrieval query for a question that leans on what was just said.

    A follow-up ("and what about the second one?") borrows the words of the sentence it
    points at, or else of the previous question, so retrieval finds the same topic.
    """
    question = without_introductions(question)
    if not history or not looks_like_followup(question):
        return question
    previous = history[-1]
    pointed = _ordinal_sentence(question, previous)
    if pointed is not None:
        return f"{question} {pointed}"
    return f"{question} {previous.query or previous.question}"


def name_in(text: str) -> str | None:
    match = _NAME.search(text)
    if match is None or match.group(1).split()[0] in _NOT_NAMES:
        return None
    return match.group(1)


class ConversationMemory:
    """The last turns of each session, for follow-up questions."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def recent(self, session_id: str) -> list[Turn]:
        return await self._store.get_list(key("session", session_id, "history"), Turn)

    async def remember(self, session_id: str, turn: Turn) -> None:
        name = key("session", session_id, "history")
        await self._store.append(name, [turn], ttl_s=HISTORY_TTL_S)
        await self._store.redis.ltrim(name, -HISTORY_TURNS, -1)


class PeopleMemory:
    """Who the twin has talked to, across sessions, and what it promised to pass on."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def _key(self, twin_id: str, guest_id: str) -> str:
        return key("twin", twin_id, "person", guest_id)

    def _index(self, twin_id: str) -> str:
        return key("twin", twin_id, "people")

    async def get(self, twin_id: str, guest_id: str) -> Person | None:
        return await self._store.get(self._key(twin_id, guest_id), Person)

    async def all(self, twin_id: str) -> list[Person]:
        ids = sorted(
            m.decode() if isinstance(m, bytes) else m
            for m in await self._store.redis.smembers(self._index(twin_id))
        )
        found = [await self.get(twin_id, guest) for guest in ids]
        return [p for p in found if p is not None]

    async def record(
        self,
        twin_id: str,
        guest_id: str,
        *,
        session_id: str,
        question: str,
        deferred: bool,
    ) -> Person:
        person = await self.get(twin_id, guest_id) or Person(guest_id=guest_id)
        person.last_seen = _now()
        if session_id not in person.sessions:
            person.sessions.append(session_id)
        person.name = name_in(question) or person.name
        person.questions = [*person.questions, question][-MAX_REMEMBERED_QUESTIONS:]
        for term in set(terms(question)):
            person.topics[term] = person.topics.get(term, 0) + 1
        if deferred:
            person.promises.append(Promise(question=question, session_id=session_id))
        await self._store.put(self._key(twin_id, guest_id), person)
        await self._store.redis.sadd(self._index(twin_id), guest_id)
        return person

    async def forget(self, twin_id: str, guest_id: str) -> bool:
        removed = await self._store.delete(self._key(twin_id, guest_id))
        await self._store.redis.srem(self._index(twin_id), guest_id)
        return removed > 0


class Inbox:
    """Questions the twin promised to pass on to its owner, oldest first."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def _key(self, twin_id: str) -> str:
        return key("twin", twin_id, "inbox")

    async def add(self, twin_id: str, promise: Promise) -> None:
        await self._store.append(self._key(twin_id), [promise])

    async def all(self, twin_id: str) -> list[Promise]:
        return await self._store.get_list(self._key(twin_id), Promise)
