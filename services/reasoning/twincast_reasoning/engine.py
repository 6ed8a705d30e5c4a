"""The twin's brain: keyword retrieval over the owner's passages and an extractive composer.

Knows nothing of the bus or the store.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from twincast_reasoning.corpus import Passage, heading
from twincast_shared.contract import Citation
from twincast_shared.contract.events import Scope
from twincast_shared.twins import TwinProfile

SCOPES_HEARD: dict[Scope, frozenset[Scope]] = {
    "public": frozenset({"public"}),
    "colleagues": frozenset({"public", "colleagues"}),
    "private": frozenset({"public", "colleagues", "private"}),
}

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")
STOPWORDS = frozenset(
    """
    a about above after again all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into
    is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves tell say said says think thinks know like really please
    could would dr i'm you're it's what's don't does much many
    """.split()  # noqa: SIM905
)


def terms(text: str) -> list[str]:
    out = []
    for word in _WORD.findall(text.lower()):
        if word in STOPWORDS or len(word) < 2:
            continue
        out.append(stem(word))
    return out


def stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix == "ies" else base
    return word


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE.split(text) if part.strip()]


@dataclass(frozen=True, slots=True)
class Hit:
    passage: Passage
    score: float
    coverage: float


class KeywordIndex:
    """BM25 over passages; out-of-scope passages are filtered out before scoring."""

    def __init__(
        self,
        passages: Sequence[Passage],
        *,
        ignore: Iterable[str] = (),
        k1: float = 1.4,
        b: float = 0.75,
    ) -> None:
        """`ignore`: words that say nothing about a topic here, such as the owner's name."""
        self._ignore = frozenset(terms(" ".join(ignore)))
        self._passages = list(passages)
        self._tf = [Counter(terms(p.text + " " + heading(p))) for p in self._passages]
        self._len = [sum(tf.values()) for tf in self._tf]
        self._avg = (sum(self._len) / len(self._len)) if self._len else 1.0
        df: Counter[str] = Counter()
        for tf in self._tf:
            df.update(tf.keys())
        n = len(self._passages)
        self._idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self._k1 = k1
        self._b = b

    def __len__(self) -> int:
        return len(self._passages)

    def idf(self, term: str) -> float:
        return self._idf.get(term, 0.0)

    def search(self, query: str, *, scope: Scope, k: int = 3) -> list[Hit]:
        allowed = SCOPES_HEARD[scope]
        q = set(terms(query)) - self._ignore
        if not q:
            return []
        total_weight = sum(max(self.idf(t), 1.0) for t in q)
        hits = []
        for passage, tf, length in zip(self._passages, self._tf, self._len, strict=True):
            if passage.scope not in allowed:
                continue
            score = 0.0
            matched = 0.0
            for t in q:
                f = tf.get(t, 0)
                if not f:
                    continue
                idf = self.idf(t)
                score += (
                    idf
                    * f
                    * (self._k1 + 1)
                    / (f + self._k1 * (1 - self._b + self._b * length / self._avg))
                )
                matched += max(idf, 1.0)
            if score > 0:
                hits.append(Hit(passage, score, matched / total_weight))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:k]


@dataclass(frozen=True)
class Answer:
    sentences: tuple[str, ...]
    citations: tuple[Citation, ...]
    deferred: bool
    expression: str = "neutral"
    retrieved: tuple[Hit, ...] = field(default=())
    # The answer without its greeting; and how many generated sentences lacked support.
    body: tuple[str, ...] = ()
    dropped: int = 0


def cite(passage: Passage) -> Citation:
    where = passage.location or f"paragraph {passage.paragraph}"
    if passage.section and not passage.location:
        where = f"{passage.section}, {where}"
    return Citation(
        source_id=passage.source_id,
        title=passage.title,
        date=passage.date,
        origin=passage.origin,
        location=where,
    )


SentenceScorer = Callable[[str, Sequence[str]], Sequence[float]]


class ExtractiveComposer:
    """Answers only with the owner's own sentences; defers when retrieval finds no support.

    A passage supports an answer when it holds `min_coverage` of the question's key words,
    or, with vectors, means nearly the same (`min_similarity`) while holding some of them.
    `scorer` (question, sentences) → relevance picks the sentences to say; without it, word
    overlap does.
    """

    def __init__(
        self,
        *,
        min_coverage: float = 0.5,
        max_sentences: int = 3,
        min_similarity: float = 0.6,
        scorer: SentenceScorer | None = None,
    ) -> None:
        self.min_coverage = min_coverage
        self._max_sentences = max_sentences
        self._min_similarity = min_similarity
        self._scorer = scorer

    def supports(self, hit: Hit) -> bool:
        if hit.coverage >= self.min_coverage:
            return True
        similarity = getattr(hit, "vector_score", 0.0)
        return similarity >= self._min_similarity and hit.coverage >= 0.6 * self.min_coverage

    def compose(
        self,
        *,
        profile: TwinProfile,
        question: str,
        hits: Sequence[Hit],
        first_turn: bool,
        guest_name: str | None = None,
    ) -> Answer:
        opening = tuple(sentences(profile.greeting)) if first_turn else ()
        if first_turn and guest_name:
            opening = (f"Hello again, {guest_name}.", *opening)
        # Among the top few, the passage that holds most of the question's words; rank fusion
        # may put a passage first that matches the meaning better than the words.
        supported = [h for h in hits[:3] if self.supports(h)]
        best = max(supported, key=lambda h: h.coverage) if supported else None
        if best is None:
            name = profile.owner_first_name
            deferral = (
                f"I don't have anything from {name} on that.",
                f"I'll pass your question to {name}.",
            )
            return Answer(
                sentences=(*opening, *deferral),
                citations=(),
                deferred=True,
                retrieved=tuple(hits),
                body=deferral,
            )
        candidates = sentences(best.passage.text)
        q = set(terms(question))
        overlap = [len(q & set(terms(c))) / max(1, len(q)) for c in candidates]
        relevance = (
            [s + 0.5 * o for s, o in zip(self._scorer(question, candidates), overlap, strict=True)]
            if self._scorer is not None
            else overlap
        )
        ranked = sorted(range(len(candidates)), key=lambda i: (-relevance[i], i))
        body = tuple(candidates[i] for i in sorted(ranked[: self._max_sentences]))
        return Answer(
            sentences=(*opening, *body),
            citations=(cite(best.passage),),
            deferred=False,
            retrieved=tuple(hits),
            body=body,
        )
