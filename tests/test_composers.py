"""Generative composers: every sentence they write must be supported by a retrieved passage."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from twincast.client import ask
from twincast.runtime import EXAMPLES, free_port, nats_server
from twincast_reasoning.answering.composers import (
    ComposeRequest,
    LocalLlama,
    OpenAICompatible,
    supported,
)
from twincast_reasoning.answering.extractive import ExtractiveComposer
from twincast_reasoning.corpus.passages import embedding_text
from twincast_reasoning.corpus.twin_folder import load_corpus, load_profile
from twincast_reasoning.handlers import SPEC as REASONING
from twincast_reasoning.retrieval.embeddings import Embedder, SentenceSimilarity
from twincast_reasoning.retrieval.index import HybridIndex, RetrievalHit
from twincast_reasoning.settings import ReasoningSettings
from twincast_reasoning.words import sentences
from twincast_shared.service import serve
from twincast_shared.settings import CommonSettings
from twincast_shared.store import StateStore

SUPPORTED = "On the Forty Roofs survey we counted 5,214 bees from 63 species."
INVENTED = "I also proved that bees can count to one thousand."


class FakeLLM:
    """An OpenAI-compatible endpoint that answers with one grounded and one invented sentence."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []

    async def complete(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        reply = {
            "choices": [{"message": {"role": "assistant", "content": f"{SUPPORTED} {INVENTED}"}}]
        }
        return web.json_response(reply)


@pytest.fixture
async def fake_llm() -> AsyncIterator[tuple[str, FakeLLM]]:
    fake = FakeLLM()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.complete)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/v1", fake
    await runner.cleanup()


QUESTION = "How many bees and species did the rooftop survey count?"


def test_support_needs_most_content_words_in_one_passage() -> None:
    passage = "Over three summers we caught 5,214 bees of 63 species on the forty roofs."
    assert supported("We caught 5,214 bees of 63 species.", [passage])
    assert not supported(INVENTED, [passage])
    assert not supported("", [passage])


def test_support_needs_every_number_it_says() -> None:
    passage = "The planted green roof next door stayed at 34 degrees Celsius."
    assert supported("The green roof next door stayed at 34 degrees.", [passage])
    assert not supported("The green roof next door stayed at 24 degrees.", [passage])


class Sample:
    """The sample twin as the reasoning service sees it: hybrid index, sentence scorer."""

    def __init__(self) -> None:
        twin = EXAMPLES / "juniper"
        self.profile = load_profile(twin)
        passages, _ = load_corpus(twin / "corpus")
        self.embedder = Embedder()
        self.index = HybridIndex.from_passages(
            passages,
            self.embedder.embed([embedding_text(p) for p in passages]),
            ignore=(self.profile.display_name, self.profile.owner_first_name),
        )
        self.extractive = ExtractiveComposer(scorer=SentenceSimilarity(self.embedder))

    def hits(self, question: str) -> list[RetrievalHit]:
        return self.index.search(question, self.embedder.embed_one(question), scope="public")


@pytest.fixture(scope="module")
def sample() -> Sample:
    return Sample()


async def test_openai_composer_drops_unsupported_sentences(
    fake_llm: tuple[str, FakeLLM], sample: Sample
) -> None:
    url, fake = fake_llm
    twin = EXAMPLES / "juniper"
    hits = sample.hits(QUESTION)
    async with aiohttp.ClientSession() as session:
        composer = OpenAICompatible(
            sample.extractive, base_url=url, model="test", api_key="k", session=session
        )
        answer = await composer.compose(
            ComposeRequest(
                profile=load_profile(twin), question=QUESTION, hits=hits, first_turn=False
            )
        )
    assert answer.sentences == (SUPPORTED,)
    assert answer.dropped == 1
    assert answer.citations
    system, user = (m["content"] for m in fake.requests[0]["messages"])  # type: ignore[attr-defined]
    assert "Add nothing that is not in the notes" in system
    assert QUESTION in user
    assert "5,214" in user, "the notes are the owner's sentences the answer rests on"


async def test_openai_composer_over_the_bus(
    fake_llm: tuple[str, FakeLLM], redis_url: str, store: StateStore, tmp_path: Path
) -> None:
    url, fake = fake_llm
    with nats_server(store=tmp_path) as nats_url:
        settings = ReasoningSettings(
            nats_url=nats_url,
            redis_url=redis_url,
            health_port=0,
            reasoning_composer="openai",
            reasoning_openai_base_url=url,
        )
        async with serve(REASONING, settings):
            result = await ask(
                CommonSettings(nats_url=nats_url, redis_url=redis_url), text=QUESTION, speak=False
            )
            deferred = await ask(
                CommonSettings(nats_url=nats_url, redis_url=redis_url),
                text="What do you think about cryptocurrency?",
                speak=False,
            )
    assert SUPPORTED in result.reply
    assert INVENTED not in result.reply
    assert deferred.deferred
    assert len(fake.requests) == 1, "a deferral needs no model call"


def test_openai_composer_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="OPENAI_BASE_URL"):
        ReasoningSettings(reasoning_composer="openai")
    assert json.dumps(ReasoningSettings().model_dump(mode="json"))


LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_llama = pytest.mark.skipif(
    not LLAMA,
    reason="llama-cpp-python is not installed: uv sync --extra llama (it compiles llama.cpp)",
)
LLAMA_QUESTIONS = (
    ("How many moth species did the Night Shift project record?", "148 species"),
    ("How much hotter does a black roof get than a green roof?", "71 degrees"),
)


@needs_llama
async def test_llama_composer_rephrases_and_keeps_only_supported_sentences(
    sample: Sample,
) -> None:
    """The real SmolLM2 model: what it writes is checked sentence by sentence against the
    passages the answer rests on, and the citations are those of the owner's own answer."""
    profile, extractive = sample.profile, sample.extractive
    composer = LocalLlama(extractive, model_path=None)
    drafts: list[str] = []
    generate = composer.generate

    async def spy(instructions: str, request: str) -> str:
        drafts.append(await generate(instructions, request))
        return drafts[-1]

    composer.generate = spy  # type: ignore[method-assign]
    for question, fact in LLAMA_QUESTIONS:
        hits = sample.hits(question)
        owner = extractive.compose(profile=profile, question=question, hits=hits, first_turn=False)
        answer = await composer.compose(
            ComposeRequest(profile=profile, question=question, hits=hits, first_turn=False)
        )
        assert not answer.deferred
        assert answer.citations == owner.citations
        evidence = [p.text for p in answer.used]
        for sentence in answer.body:
            assert supported(sentence, evidence, min_overlap=0.75), sentence
        assert fact in " ".join(answer.body)
    assert len(drafts) == len(LLAMA_QUESTIONS)
    assert all(draft.strip() for draft in drafts), "the model wrote something each time"


@needs_llama
async def test_llama_composer_over_the_bus(
    redis_url: str, store: StateStore, tmp_path: Path
) -> None:
    with nats_server(store=tmp_path) as nats_url:
        settings = ReasoningSettings(
            nats_url=nats_url, redis_url=redis_url, health_port=0, reasoning_composer="llama"
        )
        client = CommonSettings(nats_url=nats_url, redis_url=redis_url)
        async with serve(REASONING, settings):
            answered = [
                await ask(client, text=question, speak=False) for question, _ in LLAMA_QUESTIONS
            ]
            deferred = await ask(client, text="Which football team do you support?", speak=False)
    passages, _ = load_corpus(EXAMPLES / "juniper" / "corpus")
    greeting = load_profile(EXAMPLES / "juniper").greeting
    for result, (_, fact) in zip(answered, LLAMA_QUESTIONS, strict=True):
        assert not result.deferred
        assert result.citations
        cited = {c.source_id for c in result.citations}
        evidence = [p.text for p in passages if p.source_id in cited]
        body = result.reply.removeprefix(greeting).strip()
        for sentence in sentences(body):
            assert supported(sentence, evidence, min_overlap=0.75), sentence
        assert fact in body
    assert deferred.deferred
    assert not deferred.citations
