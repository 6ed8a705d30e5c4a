"""What the owner does in a live session: the words they said when they took over, and the
drafts the twin holds for their approval in shadow mode. Both are personal data in Valkey."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict

from twincast_reasoning.answering.extractive import Answer
from twincast_reasoning.corpus.passages import Passage
from twincast_reasoning.retrieval.index import RetrievalHit
from twincast_reasoning.words import sentences, terms
from twincast_shared.contract import ReplyDrafted
from twincast_shared.store import StateStore, key

OWNER_WORDS_TTL_S: Final = 24 * 3600
MAX_OWNER_WORDS: Final = 200
DRAFT_TTL_S: Final = 3600
# An owner's line counts as relevant to a question when it shares this share of the
# question's content words, or is this close in meaning.
MIN_OVERLAP: Final = 0.5
MIN_SIMILARITY: Final = 0.55


class OwnerWords:
    """What the owner said in a session while holding the floor, in order."""

    def __init__(self, store: StateStore) -> None:
        self._redis = store.redis

    async def add(self, session: str, text: str) -> None:
        name = key("session", session, "owner_words")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(name, text)
            pipe.ltrim(name, -MAX_OWNER_WORDS, -1)
            pipe.expire(name, OWNER_WORDS_TTL_S)
            await pipe.execute()

    async def all(self, session: str) -> list[str]:
        raw = await self._redis.lrange(key("session", session, "owner_words"), 0, -1)
        return [r.decode() if isinstance(r, bytes) else r for r in raw]


def owner_hits(
    session: str,
    owner_name: str,
    question: str,
    said: list[str],
    similarity: list[float],
    *,
    top_score: float,
) -> list[RetrievalHit]:
    """The owner's own lines that answer `question`, ranked above anything in the corpus:
    what the owner said live is newer than anything they wrote."""
    wanted = set(terms(question))
    hits = []
    for i, (line, sim) in enumerate(zip(said, similarity, strict=True)):
        shared = len(wanted & set(terms(line))) / len(wanted) if wanted else 0.0
        if shared < MIN_OVERLAP and sim < MIN_SIMILARITY:
            continue
        passage = Passage(
            source_id=f"live:{session}",
            title=f"{owner_name}, live in this conversation",
            date=None,
            origin="live",
            scope="public",
            section=None,
            paragraph=i + 1,
            text=line,
            location=f"said live, line {i + 1}",
        )
        hits.append(
            RetrievalHit(
                passage=passage,
                score=top_score + 1 + sim,
                coverage=max(shared, sim),
                vector_score=sim,
                keyword_score=shared,
            )
        )
    hits.sort(key=lambda hit: hit.score, reverse=True)
    return hits


class Draft(BaseModel):
    """A held answer and what it answered, until the owner decides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    draft: ReplyDrafted
    query: str


class Drafts:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def hold(self, draft: Draft) -> None:
        name = key("session", draft.draft.session_id, "draft", draft.draft.draft_id)
        await self._store.put(name, draft, ttl_s=DRAFT_TTL_S)

    async def take(self, session: str, draft_id: str) -> Draft | None:
        """The draft, removed so that it is decided once; None if unknown or decided."""
        name = key("session", session, "draft", draft_id)
        raw = await self._store.redis.getdel(name)
        return None if raw is None else Draft.model_validate_json(raw)


def drafted(
    answer: Answer,
    *,
    session: str,
    draft_id: str,
    question: str,
    in_reply_to: str,
    utterance_id: str | None,
) -> ReplyDrafted:
    return ReplyDrafted(
        session_id=session,
        draft_id=draft_id,
        in_reply_to=in_reply_to,
        utterance_id=utterance_id,
        question=question,
        sentences=answer.sentences,
        citations=answer.citations,
        expression=answer.expression,
        deferred=answer.deferred,
    )


def approved(draft: ReplyDrafted, edit: str | None) -> Answer:
    """The answer to speak: the draft as it was, or the owner's edit of it, uncited: edited
    words are the owner's own, not a quote of their sources."""
    if edit is None:
        return Answer(
            sentences=draft.sentences,
            citations=draft.citations,
            deferred=draft.deferred,
            expression=draft.expression,
            body=draft.sentences,
        )
    return spoken_line(edit)


def spoken_line(text: str) -> Answer:
    """The owner's own words for the twin to speak, sentence by sentence."""
    parts = tuple(sentences(text)) or (text.strip(),)
    return Answer(sentences=parts, citations=(), deferred=False, body=parts)
