"""Retrieval over 100,000 chunks: `HybridIndex.search` for real questions, public scope.

The corpus is synthetic: passages of ~50 words, each word drawn from the sample twin's own
word frequencies (60%) or from a Zipf distribution over 30,000 made-up words (40%), in
sources of 100 passages, 60% public, 25% colleagues, 15% private. Their vectors are random
unit vectors: brute-force cosine costs the same whatever the values. The sample twin's
real passages, with real MiniLM vectors, are stored among them, so the real questions have
real answers to find (`sample_top1_source_hits`).

Everything goes through a private Valkey (`TwinRepository.put_source`), and the index is
loaded from there as a reasoning replica would load it. Query embedding is timed apart.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import numpy as np

from twincast.runtime import EXAMPLES, valkey_server
from twincast_reasoning.corpus.passages import Passage, embedding_text
from twincast_reasoning.corpus.twin_folder import load_corpus, load_profile
from twincast_reasoning.retrieval.embeddings import DIM, Embedder
from twincast_reasoning.retrieval.index import SCOPES_HEARD, TwinIndexCache
from twincast_reasoning.retrieval.store import SourceRecord, TwinRepository
from twincast_shared.contract.events import Scope
from twincast_shared.store import StateStore
from twincast_shared.twins import TwinProfile
from twincast_testkit.stats import percentile

SAMPLE: Final = EXAMPLES / "juniper"
TWIN: Final = "bench-retrieval"
PER_SOURCE: Final = 100
WORDS_PER_PASSAGE: Final = 50
MADE_UP_WORDS: Final = 30_000
SAMPLE_SHARE: Final = 0.6
SCOPE_SHARES: Final[dict[Scope, float]] = {"public": 0.6, "colleagues": 0.25, "private": 0.15}
VECTORS: Final = "random unit vectors for synthetic passages; real MiniLM for the sample twin"


def _pct(values: list[float], q: float) -> float:
    return round(percentile(values, q), 2) if values else float("nan")


def _rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Writer:
    """Sentences from the sample twin's word frequencies mixed with made-up words."""

    def __init__(self, sample_text: str, rng: np.random.Generator) -> None:
        counts = Counter(re.findall(r"[a-z]+(?:'[a-z]+)?", sample_text.lower()))
        self._sample = np.array(list(counts))
        weights = np.array(list(counts.values()), dtype=np.float64)
        self._sample_p = weights / weights.sum()
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        lengths = rng.integers(4, 11, MADE_UP_WORDS)
        self._made_up = np.array(["".join(rng.choice(letters, n)) for n in lengths])
        zipf = 1.0 / np.arange(1, MADE_UP_WORDS + 1)
        self._made_up_p = zipf / zipf.sum()
        self._rng = rng

    def passages(self, n: int) -> list[str]:
        rng = self._rng
        total = n * WORDS_PER_PASSAGE
        from_sample = rng.random(total) < SAMPLE_SHARE
        words = np.where(
            from_sample,
            rng.choice(self._sample, total, p=self._sample_p),
            rng.choice(self._made_up, total, p=self._made_up_p),
        ).reshape(n, WORDS_PER_PASSAGE)
        out = []
        for row in words:
            sentences = [" ".join(row[i : i + 10]) for i in range(0, WORDS_PER_PASSAGE, 10)]
            out.append(" ".join(s.capitalize() + "." for s in sentences))
        return out

    def title(self) -> str:
        return " ".join(self._rng.choice(self._sample, 4, p=self._sample_p)).capitalize()


def _unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.standard_normal((n, DIM)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def _record(source_id: str, passages: list[Passage], scope: Scope) -> SourceRecord:
    digest = hashlib.sha256("\n".join(p.text for p in passages).encode()).hexdigest()
    return SourceRecord(
        source_id=source_id,
        title=passages[0].title,
        date=passages[0].date,
        origin=passages[0].origin,
        scope=scope,
        sha256=digest,
        size=sum(len(p.text) for p in passages),
        passages=len(passages),
    )


async def _fill(
    repo: TwinRepository, embedder: Embedder, chunks: int, rng: np.random.Generator
) -> tuple[int, float]:
    """Store the sample twin's sources (real vectors) and synthetic ones up to `chunks`."""
    started = time.perf_counter()
    profile = load_profile(SAMPLE)
    await repo.put_profile(TwinProfile(**{**profile.model_dump(), "id": TWIN}))
    sample, _ = load_corpus(SAMPLE / "corpus")
    by_source: dict[str, list[Passage]] = {}
    for passage in sample:
        by_source.setdefault(passage.source_id, []).append(passage)
    for source_id, items in by_source.items():
        vectors = embedder.embed([embedding_text(p) for p in items])
        await repo.put_source(TWIN, _record(source_id, items, items[0].scope), items, vectors)
    writer = _Writer(" ".join(p.text for p in sample), rng)
    scopes: list[Scope] = list(SCOPE_SHARES)
    shares = np.array(list(SCOPE_SHARES.values()))
    left = max(chunks - len(sample), 0)
    number = 0
    while left > 0:
        batch = []
        for _ in range(8):
            n = min(PER_SOURCE, left)
            if n <= 0:
                break
            left -= n
            number += 1
            scope = scopes[int(rng.choice(len(scopes), p=shares))]
            source_id = f"synthetic/{number:05d}.md"
            title = writer.title()
            passages = [
                Passage(
                    source_id=source_id,
                    title=title,
                    date="2024-01-01",
                    origin="synthetic",
                    scope=scope,
                    section=None,
                    paragraph=i + 1,
                    text=text,
                )
                for i, text in enumerate(writer.passages(n))
            ]
            record = _record(source_id, passages, scope)
            batch.append(repo.put_source(TWIN, record, passages, _unit_rows(rng, n)))
        await asyncio.gather(*batch)
    return len(sample) + max(chunks - len(sample), 0), time.perf_counter() - started


async def _measure(redis_url: str, chunks: int, queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    store = StateStore.from_url(redis_url)
    try:
        repo = TwinRepository(store)
        embedder = Embedder()
        stored, store_s = await _fill(repo, embedder, chunks, rng)

        cache = TwinIndexCache(repo)
        rss_before = _rss_mb()
        started = time.perf_counter()
        index = await cache.get(TWIN)
        load_s = time.perf_counter() - started
        gc.collect()
        rss_after = _rss_mb()

        # One source changes: the reload re-reads that source only.
        some = sorted((await repo.sources(TWIN)).items())[-1]
        passages = await repo.source_passages(TWIN, some[0])
        await repo.put_source(
            TWIN,
            some[1].model_copy(update={"sha256": "0" * 64}),
            passages,
            _unit_rows(rng, len(passages)),
        )
        started = time.perf_counter()
        reloaded = await cache.get(TWIN)
        reload_s = time.perf_counter() - started
        assert reloaded.changes.read == {some[0]}, reloaded.changes
        index = reloaded

        questions = json.loads((SAMPLE / "questions.json").read_text())
        asked = [questions[i % len(questions)] for i in range(queries)]
        embed_ms: list[float] = []
        vectors: list[np.ndarray] = []
        for q in asked:
            t0 = time.perf_counter()
            vectors.append(embedder.embed_one(q["question"]))
            embed_ms.append(1000 * (time.perf_counter() - t0))
        for q, v in zip(asked[:10], vectors, strict=False):
            index.search(q["question"], v, scope="public")
        timings: dict[Scope, list[float]] = {"public": [], "private": []}
        heard_ok = True
        for scope, times in timings.items():
            for q, v in zip(asked, vectors, strict=True):
                t0 = time.perf_counter()
                hits = index.search(q["question"], v, scope=scope, k=5)
                times.append(1000 * (time.perf_counter() - t0))
                heard_ok &= all(h.passage.scope in SCOPES_HEARD[scope] for h in hits)
        answerable = [q for q in questions if q["expect"] == "answer"]
        found = 0
        for q in answerable:
            hits = index.search(
                q["question"], embedder.embed_one(q["question"]), scope=q["scope"], k=1
            )
            found += bool(
                hits
                and not hits[0].passage.source_id.startswith("synthetic/")
                and any(f in hits[0].passage.text.lower() for f in q["facts"])
            )
        return {
            "retrieval_p50_ms_100k": _pct(timings["public"], 50),
            "retrieval_p95_ms_100k": _pct(timings["public"], 95),
            "retrieval_p50_ms_100k_private_scope": _pct(timings["private"], 50),
            "retrieval_p95_ms_100k_private_scope": _pct(timings["private"], 95),
            "query_embed_ms_p50": _pct(embed_ms, 50),
            "index_load_s": round(load_s, 2),
            "index_reload_one_source_s": round(reload_s, 3),
            "index_mb": round(index.nbytes / 2**20, 1),
            "index_rss_mb": round(rss_after - rss_before, 1),
            "store_fill_s": round(store_s, 1),
            "chunks": stored,
            "rows_public": index.rows("public"),
            "queries": queries,
            "scope_ok": heard_ok,
            "sample_top1_source_hits": f"{found}/{len(answerable)}",
            "fusion": f"{index.fusion.method} k={index.fusion.rrf_k} depth={index.fusion.depth}",
            "vectors": VECTORS,
        }
    finally:
        await store.close()


def run_retrieval_bench(*, chunks: int = 100_000, queries: int = 200) -> dict[str, Any]:
    """`retrieval_p50_ms_100k` and the rest are named for the default size; `chunks` says
    how many there were. Timings exclude query embedding (`query_embed_ms_p50`)."""
    with (
        tempfile.TemporaryDirectory(prefix="twincast-bench-retrieval-") as tmp,
        valkey_server(Path(tmp), durable=False) as url,
    ):
        return asyncio.run(_measure(url, chunks, queries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(run_retrieval_bench(chunks=args.chunks, queries=args.queries)))


if __name__ == "__main__":
    main()
