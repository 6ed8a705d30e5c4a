"""Hybrid retrieval over a twin's passages: cosine over MiniLM vectors next to BM25.

Rows are ordered by scope level (every public passage, then colleagues, then private), so the
rows a guest may hear are a prefix of every array. A search slices that prefix before it
scores anything: the vector product, the BM25 postings (cut at the prefix with a binary
search) and the BM25 statistics (document frequency, average length) only ever see rows the
guest's scope allows. The results a public guest gets are therefore a function of public
passages alone: adding, changing or deleting a private source cannot change them.

The index is built from the state store (`retrieval/store.py` layout) and kept per twin by
`TwinIndexCache`, which reloads when the twin's version counter moves and then re-reads only
the sources whose record changed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from twincast_reasoning.corpus.passages import Passage, heading
from twincast_reasoning.retrieval.embeddings import DIM
from twincast_reasoning.retrieval.store import SourceRecord, TwinRepository
from twincast_reasoning.words import WORD, terms
from twincast_shared.contract.events import Scope
from twincast_shared.twins import TwinProfile

Floats = NDArray[np.float32]
Ints = NDArray[np.int64]

SCOPES_HEARD: dict[Scope, frozenset[Scope]] = {
    "public": frozenset({"public"}),
    "colleagues": frozenset({"public", "colleagues"}),
    "private": frozenset({"public", "colleagues", "private"}),
}


@dataclass(frozen=True, slots=True)
class Hit:
    passage: Passage
    score: float
    coverage: float


LEVEL: Final[dict[Scope, int]] = {scope: len(heard) - 1 for scope, heard in SCOPES_HEARD.items()}
# The prefix layout is only sound if every scope hears exactly the scopes at or below its level.
for _scope, _heard in SCOPES_HEARD.items():
    if _heard != frozenset(s for s, lv in LEVEL.items() if lv <= LEVEL[_scope]):
        raise RuntimeError(f"SCOPES_HEARD is not nested by level at {_scope!r}")


@dataclass(frozen=True, slots=True)
class RetrievalHit(Hit):
    """`score` is the fused score (what the ranking used); `coverage` is the IDF-weighted share
    of the query's terms the passage holds (see `HybridIndex._keyword`); `vector_score` is the
    cosine (0 for a passage without a vector) and `keyword_score` the BM25 score."""

    vector_score: float
    keyword_score: float


@dataclass(frozen=True, slots=True)
class Fusion:
    """How cosine and BM25 combine.

    `weighted`: `vector_weight * max(cosine, 0) + (1 - vector_weight) * bm25 / best_bm25`, over
    every row in scope (1.0 is vectors only, 0.0 is keywords only).
    `rrf`: reciprocal-rank fusion of each list's top `depth`, `1 / (rrf_k + rank)`.

    A passage stored without a vector (all zeros) is ranked by its words alone: its keyword
    term stands in for the vector term it cannot have, so a source not yet embedded is not
    buried under passages that merely appear in both lists.
    """

    method: Literal["weighted", "rrf"] = "rrf"
    vector_weight: float = 0.5
    rrf_k: int = 60
    depth: int = 50


DEFAULT_FUSION: Final = Fusion()
KEYWORD_ONLY: Final = Fusion(method="weighted", vector_weight=0.0)
VECTOR_ONLY: Final = Fusion(method="weighted", vector_weight=1.0)


@dataclass(frozen=True, slots=True)
class IndexChanges:
    """What the last (re)load did, by source id."""

    read: frozenset[str] = frozenset()
    kept: frozenset[str] = frozenset()
    dropped: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, eq=False)
class _Source:
    """One source, analysed: what a reload keeps when the source did not change."""

    record: SourceRecord | None  # None: read inconsistently, so read again next time
    passages: tuple[Passage, ...]
    levels: NDArray[np.int8]
    vectors: Floats
    doc: NDArray[np.int32]  # (doc, term, tf) triples, doc local to the source
    term: NDArray[np.int32]
    tf: Floats
    length: Floats


class _Vocabulary:
    """Term → id; only grows, so ids stay valid for every index built from one cache.

    `terms()` applied word by word, memoised: the same terms, in a fraction of the time (the
    stemmer is most of the cost of loading a large twin)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self._words: dict[str, int] = {}

    def term_ids(self, text: str) -> list[int]:
        words = self._words
        found = WORD.findall(text.lower())
        for word in found:
            if word not in words:
                stemmed = terms(word)
                words[word] = self.ids.setdefault(stemmed[0], len(self.ids)) if stemmed else -1
        return [tid for tid in map(words.__getitem__, found) if tid >= 0]


def _analyse(
    record: SourceRecord | None,
    passages: Sequence[Passage],
    vectors: np.ndarray,
    vocabulary: _Vocabulary,
) -> _Source:
    n = len(passages)
    record_level = LEVEL[record.scope] if record is not None else 0
    levels = np.array([max(LEVEL[p.scope], record_level) for p in passages], dtype=np.int8)
    matrix = np.zeros((n, DIM), dtype=np.float32)
    if vectors.shape == (n, DIM):
        matrix[:] = vectors
        bad = ~np.isfinite(matrix)
        if bad.any():
            matrix[bad] = 0.0
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        np.divide(matrix, norms, out=matrix, where=norms > 0)
    elif vectors.size:
        record = None
    heading_ids: dict[str, list[int]] = {}
    ids: list[int] = []
    token_doc: list[int] = []
    for i, passage in enumerate(passages):
        found = vocabulary.term_ids(passage.text)
        head = heading(passage)
        if head not in heading_ids:
            heading_ids[head] = vocabulary.term_ids(head)
        found += heading_ids[head]
        ids.extend(found)
        token_doc.extend([i] * len(found))
    doc = np.array(token_doc, dtype=np.int64)
    pairs, tf = np.unique((doc << 32) | np.array(ids, dtype=np.int64), return_counts=True)
    return _Source(
        record=record,
        passages=tuple(passages),
        levels=levels,
        vectors=matrix,
        doc=(pairs >> 32).astype(np.int32),
        term=(pairs & 0xFFFFFFFF).astype(np.int32),
        tf=tf.astype(np.float32),
        length=np.bincount(doc, minlength=n).astype(np.float32),
    )


_NONE: Final[Ints] = np.zeros(0, dtype=np.int64)


def _top(scores: np.ndarray, n: int) -> Ints:
    """Indices of the `n` highest positive scores, best first (ties: lower row first).

    Only positive entries go to `argpartition`: it slows down by orders of magnitude on an
    array of mostly equal values (a keyword score vector is mostly zeros)."""
    if n <= 0:
        return _NONE
    idx = np.flatnonzero(scores > 0)
    if idx.size > n:
        idx = idx[np.argpartition(scores[idx], idx.size - n)[idx.size - n :]]
    top: Ints = idx[np.lexsort((idx, -scores[idx]))]
    return top


class HybridIndex:
    """Vectors and BM25 over one twin's passages; search sees only the guest's scope.

    Built by `load` / `TwinIndexCache` from the store, or `from_passages`. Read-only once
    built: a reload builds a new one, so a search in flight never sees half a change."""

    def __init__(
        self,
        sources: Sequence[_Source],
        *,
        vocabulary: _Vocabulary,
        ignore: Iterable[str] = (),
        fusion: Fusion = DEFAULT_FUSION,
        k1: float = 1.4,
        b: float = 0.75,
        version: int = 0,
        profile: TwinProfile | None = None,
        changes: IndexChanges = IndexChanges(),
    ) -> None:
        self.version = version
        self.profile = profile
        self.changes = changes
        self.fusion = fusion
        self._ignore = frozenset(terms(" ".join(ignore)))
        self._vocabulary = vocabulary.ids
        self._k1 = k1
        self._b = b
        counts = [len(s.passages) for s in sources]
        offsets = np.cumsum([0, *counts])
        n = int(offsets[-1])
        levels = np.concatenate([s.levels for s in sources]) if n else np.zeros(0, dtype=np.int8)
        order = np.argsort(levels, kind="stable")
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        flat = [p for s in sources for p in s.passages]
        self._passages: list[Passage] = [flat[i] for i in order]
        self._levels = levels[order]
        self._matrix = np.zeros((n, DIM), dtype=np.float32)
        self._length = np.zeros(n, dtype=np.float32)
        # Where a source's rows are one run (all its passages share a level), the first row:
        # the reload cache then keeps a view of this matrix instead of a copy of its vectors.
        self._runs: list[int | None] = []
        docs, term_ids, tfs = [], [], []
        for source, start, count in zip(sources, offsets[:-1], counts, strict=True):
            rows = position[start : start + count]
            first = int(rows[0]) if count else 0
            if count and int(rows[-1]) - first == count - 1:
                self._matrix[first : first + count] = source.vectors
                self._runs.append(first)
            else:
                self._matrix[rows] = source.vectors
                self._runs.append(None)
            self._length[rows] = source.length
            docs.append(rows[source.doc])
            term_ids.append(source.term.astype(np.int64))
            tfs.append(source.tf)
        doc = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int64)
        term = np.concatenate(term_ids) if term_ids else np.zeros(0, dtype=np.int64)
        tf = np.concatenate(tfs) if tfs else np.zeros(0, dtype=np.float32)
        by_term = np.argsort(term * max(n, 1) + doc)
        self._n_terms = len(vocabulary.ids)
        self._post_doc = doc[by_term].astype(np.int32)
        self._post_tf = tf[by_term]
        self._post_ptr = np.searchsorted(term[by_term], np.arange(self._n_terms + 1))
        self._limits = {
            scope: int(np.searchsorted(self._levels, level, side="right"))
            for scope, level in LEVEL.items()
        }
        self._cum_length = np.concatenate([[0.0], np.cumsum(self._length, dtype=np.float64)])
        self._has_vector = (self._matrix != 0).any(axis=1)

    def _sharing_vectors(self, sources: Sequence[_Source]) -> list[_Source]:
        """`sources` (as given to the constructor) holding views of this index's matrix."""
        out = []
        for source, first in zip(sources, self._runs, strict=True):
            if first is not None:
                view = self._matrix[first : first + len(source.passages)]
                source = replace(source, vectors=view)
            out.append(source)
        return out

    @classmethod
    def from_passages(
        cls,
        passages: Sequence[Passage],
        vectors: np.ndarray | None = None,
        *,
        ignore: Iterable[str] = (),
        fusion: Fusion = DEFAULT_FUSION,
    ) -> HybridIndex:
        """Without a store (tests, evaluation); `vectors` default to zeros."""
        if vectors is None:
            vectors = np.zeros((len(passages), DIM), dtype=np.float32)
        if vectors.shape != (len(passages), DIM):
            raise ValueError(f"vectors {vectors.shape} do not match {len(passages)} passages")
        vocabulary = _Vocabulary()
        source = _analyse(None, passages, vectors, vocabulary)
        return cls([source], vocabulary=vocabulary, ignore=ignore, fusion=fusion)

    @classmethod
    async def load(
        cls, repo: TwinRepository, twin_id: str, *, fusion: Fusion = DEFAULT_FUSION
    ) -> HybridIndex:
        return await _TwinState(fusion=fusion).refresh(repo, twin_id)

    def __len__(self) -> int:
        return len(self._passages)

    def rows(self, scope: Scope) -> int:
        """How many passages a guest with this scope may hear."""
        return self._limits[scope]

    @property
    def nbytes(self) -> int:
        """Bytes held in numpy arrays (vectors, postings, lengths); not the Passage objects."""
        arrays = (
            self._matrix,
            self._length,
            self._levels,
            self._post_doc,
            self._post_tf,
            self._post_ptr,
            self._cum_length,
            self._has_vector,
        )
        return sum(a.nbytes for a in arrays)

    def with_fusion(self, fusion: Fusion) -> HybridIndex:
        """The same data, fused another way (shares every array)."""
        other = object.__new__(HybridIndex)
        other.__dict__.update(self.__dict__)
        other.fusion = fusion
        return other

    def search(
        self,
        query: str,
        query_vector: np.ndarray | None,
        *,
        scope: Scope,
        k: int = 5,
    ) -> list[RetrievalHit]:
        """Best `k` passages the scope allows, best first. A zero or missing `query_vector`
        leaves keywords alone; passages stored with zero vectors score 0 on the vector side."""
        limit = self._limits[scope]
        if limit == 0 or k <= 0:
            return []
        keyword, matched, total_weight = self._keyword(query, limit)
        cosine = self._cosine(query_vector, limit)
        fusion = self.fusion
        if fusion.method == "rrf":
            by_vector = _top(cosine, fusion.depth) if cosine is not None else _NONE
            by_keyword = _top(keyword, fusion.depth)
            rows = np.unique(np.concatenate([by_vector, by_keyword]))
            fused = np.zeros(rows.size, dtype=np.float64)
            fused[np.searchsorted(rows, by_vector)] += 1.0 / (
                fusion.rrf_k + 1 + np.arange(by_vector.size)
            )
            keyword_rr = 1.0 / (fusion.rrf_k + 1 + np.arange(by_keyword.size))
            if cosine is not None:
                keyword_rr[~self._has_vector[by_keyword]] *= 2
            fused[np.searchsorted(rows, by_keyword)] += keyword_rr
            best_first = rows[_top(fused, k)]
            scores = dict(zip(rows.tolist(), fused.tolist(), strict=True))
        else:
            best = float(keyword.max())
            relative = keyword / best if best > 0 else np.zeros_like(keyword)
            dense = (1.0 - fusion.vector_weight) * relative
            if cosine is not None:
                dense += fusion.vector_weight * np.where(
                    self._has_vector[:limit], np.maximum(cosine, 0.0), relative
                )
            best_first = _top(dense, k)
            scores = {row: float(dense[row]) for row in best_first.tolist()}
        level = LEVEL[scope]
        heard = SCOPES_HEARD[scope]
        hits = []
        for row in best_first.tolist():
            passage = self._passages[row]
            # Unreachable by construction (row < limit); kept as the last line of defence.
            if self._levels[row] > level or passage.scope not in heard:
                continue
            hits.append(
                RetrievalHit(
                    passage=passage,
                    score=scores[row],
                    coverage=float(matched[row] / total_weight) if total_weight else 0.0,
                    vector_score=float(cosine[row]) if cosine is not None else 0.0,
                    keyword_score=float(keyword[row]),
                )
            )
        return hits

    def _cosine(self, query_vector: np.ndarray | None, limit: int) -> Floats | None:
        """Cosine of every row in scope; None without a usable query vector."""
        if query_vector is None:
            return None
        q = np.nan_to_num(np.asarray(query_vector, dtype=np.float32).reshape(-1))
        if q.shape != (DIM,):
            raise ValueError(f"query vector has shape {q.shape}, expected ({DIM},)")
        norm = float(np.linalg.norm(q))
        if norm == 0:
            return None
        scores: Floats = self._matrix[:limit] @ (q / norm)
        return scores

    def _keyword(self, query: str, limit: int) -> tuple[Floats, Floats, float]:
        """BM25, matched IDF weight per row, and the query's total IDF weight.

        A term weighs `max(idf, 1)`, over the rows in scope. A term no row in scope holds weighs
        the IDF of a term seen nowhere (weighing it 1 would count "your opinion on
        cryptocurrency" as 77% covered by any passage with "opinion")."""
        scores = np.zeros(limit, dtype=np.float32)
        matched = np.zeros(limit, dtype=np.float32)
        total = 0.0
        absent = math.log(1 + (limit + 0.5) / 0.5)
        avg = float(self._cum_length[limit] / limit) or 1.0
        k1, b = self._k1, self._b
        for term in set(terms(query)) - self._ignore:
            tid = self._vocabulary.get(term)
            if tid is None or tid >= self._n_terms:
                total += absent
                continue
            lo, hi = int(self._post_ptr[tid]), int(self._post_ptr[tid + 1])
            df = int(np.searchsorted(self._post_doc[lo:hi], limit))
            if df == 0:
                total += absent
                continue
            idf = math.log(1 + (limit - df + 0.5) / (df + 0.5))
            weight = max(idf, 1.0)
            total += weight
            docs = self._post_doc[lo : lo + df]
            tf = self._post_tf[lo : lo + df]
            norm = k1 * (1 - b + b * self._length[docs] / avg)
            scores[docs] += idf * tf * (k1 + 1) / (tf + norm)
            matched[docs] += weight
        return scores, matched, total


@dataclass
class _TwinState:
    fusion: Fusion
    concurrency: int = 32
    version: int = -1
    index: HybridIndex | None = None
    sources: dict[str, _Source] = field(default_factory=dict)
    vocabulary: _Vocabulary = field(default_factory=_Vocabulary)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refresh(self, repo: TwinRepository, twin_id: str) -> HybridIndex:
        # The version is read first: a change landing during the reload moves it again, and
        # the next call reloads whatever source record differs from what was read here.
        version = await repo.version(twin_id)
        profile = await repo.profile(twin_id)
        records = await repo.sources(twin_id)
        stale = [
            sid
            for sid, record in records.items()
            if (cached := self.sources.get(sid)) is None or cached.record != record
        ]
        fetched: dict[str, tuple[list[Passage], np.ndarray]] = {}
        for start in range(0, len(stale), self.concurrency):
            batch = stale[start : start + self.concurrency]
            rows = await asyncio.gather(*(_read_source(repo, twin_id, sid) for sid in batch))
            fetched.update(zip(batch, rows, strict=True))
        kept = frozenset(records) - frozenset(stale)
        dropped = frozenset(self.sources) - frozenset(records)
        changes = IndexChanges(read=frozenset(stale), kept=kept, dropped=dropped)
        ignore = (profile.display_name, profile.owner_first_name) if profile else ()

        def build() -> HybridIndex:
            sources = {sid: self.sources[sid] for sid in kept}
            for sid, (passages, vectors) in fetched.items():
                sources[sid] = _analyse(records[sid], passages, vectors, self.vocabulary)
            ordered = dict(sorted(sources.items()))
            index = HybridIndex(
                list(ordered.values()),
                vocabulary=self.vocabulary,
                ignore=ignore,
                fusion=self.fusion,
                version=version,
                profile=profile,
                changes=changes,
            )
            shared = index._sharing_vectors(list(ordered.values()))
            self.sources = dict(zip(ordered, shared, strict=True))
            return index

        index = await asyncio.to_thread(build)
        self.version = version
        self.index = index
        return index


async def _read_source(
    repo: TwinRepository, twin_id: str, source_id: str
) -> tuple[list[Passage], np.ndarray]:
    passages, vectors = await asyncio.gather(
        repo.source_passages(twin_id, source_id), repo.source_vectors(twin_id, source_id)
    )
    return passages, vectors


class TwinIndexCache:
    """One `HybridIndex` per twin, reloaded when the twin's version moves.

    A reload re-reads only the sources whose record (sha256, scope, ingestion time…) changed
    and drops removed ones. Callers wait for a reload rather than get the previous index: a
    source just made private must not be heard one more time.
    """

    def __init__(self, repo: TwinRepository, *, fusion: Fusion = DEFAULT_FUSION) -> None:
        self._repo = repo
        self._fusion = fusion
        self._twins: dict[str, _TwinState] = {}

    async def get(self, twin_id: str) -> HybridIndex:
        state = self._twins.setdefault(twin_id, _TwinState(fusion=self._fusion))
        version = await self._repo.version(twin_id)
        if state.index is not None and state.version == version:
            return state.index
        async with state.lock:
            if state.index is not None and state.version == await self._repo.version(twin_id):
                return state.index
            return await state.refresh(self._repo, twin_id)

    def cached(self) -> Mapping[str, int]:
        """Twin id → version of the index held."""
        return {t: s.version for t, s in self._twins.items() if s.index is not None}

    def drop(self, twin_id: str) -> None:
        self._twins.pop(twin_id, None)

    def clear(self) -> None:
        self._twins.clear()
