"""`twincast bench twin`: the sample twin's question set through the reasoning service.

Each question goes over the real bus in a fresh session with the question's audience scope.
An answer is correct when it holds every expected fact; a deferral is correct when the twin
says it will pass the question on; a leak is any restricted fact heard by a public guest.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import numpy as np

from twincast.client import ask
from twincast.runtime import EXAMPLES, private_stack
from twincast_shared.settings import CommonSettings

QUESTIONS = EXAMPLES / "juniper" / "questions.json"


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


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
                    "facts_heard": all(f.lower() in heard for f in item.get("facts", [])),
                    "leaked": [f for f in item.get("leak_facts", []) if f.lower() in heard],
                    "reply_ms": result.timings_ms.get("reasoning", elapsed),
                    "turn_ms": elapsed,
                }
            )
    return rows


def run_twin_bench(*, runs: int = 3, retrieval_chunks: int = 100_000) -> dict[str, Any]:
    with private_stack(("reasoning",), log_to=io.StringIO()) as urls:
        settings = CommonSettings(nats_url=urls.nats, redis_url=urls.redis)
        rows = asyncio.run(_ask_all(settings, runs))
    answers = [r for r in rows if r["expect"] == "answer"]
    defers = [r for r in rows if r["expect"] == "defer"]
    first = rows[: len(rows) // runs]
    out: dict[str, Any] = {
        "answered_correct": round(
            sum(r["facts_heard"] and not r["deferred"] for r in answers) / len(answers), 3
        ),
        "deferred_correct": round(sum(r["deferred"] for r in defers) / len(defers), 3),
        "leaks": sum(len(r["leaked"]) for r in rows if r["scope"] == "public"),
        "p50_ms": _pct([r["reply_ms"] for r in rows], 50),
        "p95_ms": _pct([r["reply_ms"] for r in rows], 95),
        "questions": len(first),
        "runs": runs,
        "missed": sorted({r["question"] for r in answers if not r["facts_heard"] or r["deferred"]}),
        "wrongly_answered": sorted({r["question"] for r in defers if not r["deferred"]}),
        "reply_ms_is": "question published -> first reply sentence received, over the bus",
    }
    if retrieval_chunks:
        from bench.retrieval import run_retrieval_bench

        retrieval = run_retrieval_bench(chunks=retrieval_chunks)
        out["retrieval_p50_ms_100k"] = retrieval["retrieval_p50_ms_100k"]
        out["retrieval"] = retrieval
    return out
