"""Generative composers: every sentence they write must be supported by a retrieved passage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import _server
from twincast.client import ask
from twincast.runtime import EXAMPLES, free_port, nats_server_bin
from twincast_reasoning.composers import ComposeRequest, OpenAICompatible, supported
from twincast_reasoning.corpus import load_corpus, load_profile
from twincast_reasoning.engine import ExtractiveComposer, KeywordIndex
from twincast_reasoning.handlers import SPEC as REASONING
from twincast_reasoning.settings import ReasoningSettings
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


async def test_openai_composer_drops_unsupported_sentences(fake_llm: tuple[str, FakeLLM]) -> None:
    url, fake = fake_llm
    twin = EXAMPLES / "juniper"
    passages, _ = load_corpus(twin / "corpus")
    hits = KeywordIndex(passages, ignore=("Juniper Hale",)).search(QUESTION, scope="public")
    async with aiohttp.ClientSession() as session:
        composer = OpenAICompatible(
            ExtractiveComposer(), base_url=url, model="test", api_key="k", session=session
        )
        answer = await composer.compose(
            ComposeRequest(
                profile=load_profile(twin), question=QUESTION, hits=hits, first_turn=False
            )
        )
    assert answer.sentences == (SUPPORTED,)
    assert answer.dropped == 1
    assert answer.citations
    system = fake.requests[0]["messages"][0]["content"]  # type: ignore[index]
    assert "ONLY the facts in the passages" in system
    assert "5,214" in system


async def test_openai_composer_over_the_bus(
    fake_llm: tuple[str, FakeLLM], redis_url: str, store: StateStore, tmp_path: Path
) -> None:
    url, fake = fake_llm
    port = free_port()
    argv = [str(nats_server_bin()), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path)]
    with _server(argv, port):
        nats_url = f"nats://127.0.0.1:{port}"
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
