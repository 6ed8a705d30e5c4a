"""The extractive composer: answers made only of the owner's own sentences, with citations.

Knows nothing of the bus or the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from twincast_reasoning.corpus.passages import Passage
from twincast_reasoning.retrieval.index import Hit
from twincast_reasoning.words import sentences, terms
from twincast_shared.contract import Citation
from twincast_shared.twins import TwinProfile


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
    # The passages the body was taken from (or, for a generative composer, checked against).
    used: tuple[Passage, ...] = ()


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


@dataclass(frozen=True, slots=True)
class _Run:
    """Consecutive sentences of one passage: what the twin says from it."""

    hit: Hit
    sentences: tuple[str, ...]
    words: int
    peak: float


class ExtractiveComposer:
    """Answers only with the owner's own sentences; defers when retrieval finds no support.

    A passage supports an answer when it holds `min_coverage` of the question's key words,
    or, with vectors, means nearly the same (`min_similarity`) while holding some of them.

    The answer is a run of consecutive sentences, as the owner wrote them, from the supporting
    passage closest in meaning to the question: the run of at most `max_words` words (and
    `max_sentences` sentences) whose sentences are most relevant in sum. Owners make a point
    over several sentences ("Here is what I tell them. Keep a field notebook…"), and the
    sentences that carry the facts often share no word with the question, so a run reads and
    answers better than the few sentences most like the question. If words are left, the
    next supporting passage adds its own best run when it is nearly as relevant.
    `scorer` (question, sentences) → relevance; without it, word overlap alone.
    """

    def __init__(
        self,
        *,
        min_coverage: float = 0.5,
        max_sentences: int = 6,
        max_words: int = 60,
        min_similarity: float = 0.6,
        scorer: SentenceScorer | None = None,
        second_within: float = 0.3,
    ) -> None:
        self.min_coverage = min_coverage
        self._max_sentences = max_sentences
        self._max_words = max_words
        self._min_similarity = min_similarity
        self._scorer = scorer
        self._second_within = second_within

    def supports(self, hit: Hit) -> bool:
        if hit.coverage >= self.min_coverage:
            return True
        similarity = getattr(hit, "vector_score", 0.0)
        return similarity >= self._min_similarity and hit.coverage >= 0.6 * self.min_coverage

    def supporting(self, hits: Sequence[Hit]) -> list[Hit]:
        """The supporting passages among the top three, closest in meaning first (by words
        where there are no vectors): every passage of a source holds its title's words, so
        word coverage alone cannot tell the paragraph that answers from the one that
        introduces the topic."""
        found = [h for h in hits[:3] if self.supports(h)]
        return sorted(
            found, key=lambda h: (getattr(h, "vector_score", 0.0), h.coverage), reverse=True
        )

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
        ranked = self.supporting(hits)
        if not ranked:
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
        runs = [self._best_run(question, ranked[0], self._max_words, self._max_sentences)]
        words_left = self._max_words - runs[0].words
        sentences_left = self._max_sentences - len(runs[0].sentences)
        if len(ranked) > 1 and words_left > 0 and sentences_left > 0:
            more = self._best_run(question, ranked[1], words_left, sentences_left)
            if more.words <= words_left and more.peak >= runs[0].peak - self._second_within:
                runs.append(more)
        # Two runs from one source are said in the source's order.
        if len(runs) == 2 and runs[0].hit.passage.source_id == runs[1].hit.passage.source_id:
            runs.sort(key=lambda r: r.hit.passage.paragraph)
        body = tuple(s for run in runs for s in run.sentences)
        used = tuple(run.hit.passage for run in runs)
        return Answer(
            sentences=(*opening, *body),
            citations=tuple(dict.fromkeys(cite(p) for p in used)),
            deferred=False,
            retrieved=tuple(hits),
            body=body,
            used=used,
        )

    def relevance(self, question: str, candidates: Sequence[str]) -> list[float]:
        q = set(terms(question))
        overlap = [len(q & set(terms(c))) / max(1, len(q)) for c in candidates]
        if self._scorer is None:
            return overlap
        scores = self._scorer(question, candidates)
        return [s + 0.5 * o for s, o in zip(scores, overlap, strict=True)]

    def _best_run(self, question: str, hit: Hit, max_words: int, max_sentences: int) -> _Run:
        said = sentences(hit.passage.text)
        relevance = self.relevance(question, said)
        words = [len(s.split()) for s in said]
        best: tuple[float, int, int, int] | None = None  # (sum, -length, -start, end)
        for i in range(len(said)):
            total, length = 0.0, 0
            for j in range(i, min(len(said), i + max_sentences)):
                length += words[j]
                # A first sentence longer than the budget is still said alone.
                if length > max_words and j > i:
                    break
                total += relevance[j]
                candidate = (total, i - j, -i, j + 1)
                if best is None or candidate > best:
                    best = candidate
        assert best is not None, "a passage holds at least one sentence"
        _, _, start, end = best
        start = -start
        return _Run(
            hit=hit,
            sentences=tuple(said[start:end]),
            words=sum(words[start:end]),
            peak=max(relevance[start:end]),
        )
