"""`twincast bench twin`: the sample twin's question set through the reasoning service.

Each question goes over the real bus in a fresh session with the question's audience scope.
An answer is correct when it holds every expected fact; a deferral is correct when the twin
says it will pass the question on; a leak is any restricted fact heard by a public guest.
`composer` picks the reasoning service's composer (`TWINCAST_REASONING_COMPOSER`, default
extractive); `verbatim_share` is the share of answer sentences that are the owner's own
sentences word for word (1.0 for extractive; lower where a generative composer rephrased).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import time
from typing import Any

from twincast.client import ask
from twincast.runtime import EXAMPLES, private_stack
from twincast_reasoning.corpus.twin_folder import load_corpus, load_profile
from twincast_reasoning.words import sentences
from twincast_shared.settings import CommonSettings
from twincast_testkit.stats import percentile

TWIN = EXAMPLES / "juniper"
QUESTIONS = TWIN / "questions.json"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _verbatim_share(rows: list[dict[str, Any]]) -> float | None:
    """Share of the answers' sentences (greeting left out) found word for word in the corpus."""
    passages, _ = load_corpus(TWIN / "corpus")
    corpus = _flat(" ".join(p.text for p in passages))
    greeting = {_flat(s) for s in sentences(load_profile(TWIN).greeting)}
    said = [
        _flat(s)
        for r in rows
        if not r["deferred"]
        for s in sentences(r["reply"])
        if _flat(s) not in greeting
    ]
    return round(sum(s in corpus for s in said) / len(said), 3) if said else None


def _pct(values: list[float], q: float) -> float:
    return round(percentile(values, q), 1)


async def _ask_all(settings: CommonSettings, runs: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(runs):
        for item in json.loads(QUESTIONS.read_text()):
            started = time.perf_counter()
            result = await ask(settings, text=item["question"], scope=item["scope"], speak=False)
            elapsed = 1000 * (time.perf_counter() - started)
            heard = result.reply.lower()
            rows.append(
                {
                    "question": item["question"],
                    "expect": item["expect"],
                    "scope": item["scope"],
                    "deferred": result.deferred,
                    "reply": result.reply,
                    "facts_heard": all(f.lower() in heard for f in item.get("facts", [])),
                    "leaked": [f for f in item.get("leak_facts", []) if f.lower() in heard],
                    "reply_ms": result.timings_ms.get("reasoning", elapsed),
                    "turn_ms": elapsed,
                }
            )
    return rows


def run_twin_bench(
    *, runs: int = 3, retrieval_chunks: int = 100_000, composer: str | None = None
) -> dict[str, Any]:
    composer = composer or os.environ.get("TWINCAST_REASONING_COMPOSER", "extractive")
    env = {"TWINCAST_REASONING_COMPOSER": composer}
    with private_stack(("reasoning",), log_to=io.StringIO(), env=env) as urls:
        settings = CommonSettings(nats_url=urls.nats, redis_url=urls.redis)
        rows = asyncio.run(_ask_all(settings, runs))
    answers = [r for r in rows if r["expect"] == "answer"]
    defers = [r for r in rows if r["expect"] == "defer"]
    first = rows[: len(rows) // runs]
    out: dict[str, Any] = {
        "composer": composer,
        "answered_correct": round(
            sum(r["facts_heard"] and not r["deferred"] for r in answers) / len(answers), 3
        ),
        "deferred_correct": round(sum(r["deferred"] for r in defers) / len(defers), 3),
        "leaks": sum(len(r["leaked"]) for r in rows if r["scope"] == "public"),
        "p50_ms": _pct([r["reply_ms"] for r in rows], 50),
        "p95_ms": _pct([r["reply_ms"] for r in rows], 95),
        # The first pass meets every passage's sentences before they are embedded and cached.
        "p50_ms_first_pass": _pct([r["reply_ms"] for r in first], 50),
        "verbatim_share": _verbatim_share(answers),
        "questions": len(first),
        "runs": runs,
        "missed": sorted({r["question"] for r in answers if not r["facts_heard"] or r["deferred"]}),
        "wrongly_answered": sorted({r["question"] for r in defers if not r["deferred"]}),
        "reply_ms_is": "question published -> first reply sentence received, over the bus",
    }
    if retrieval_chunks:
        from twincast_bench.retrieval import run_retrieval_bench

        retrieval = run_retrieval_bench(chunks=retrieval_chunks)
        out["retrieval_p50_ms_100k"] = retrieval["retrieval_p50_ms_100k"]
        out["retrieval"] = retrieval
    return out
