"""Every service's health port serves Prometheus text; a turn and a bad event move its numbers."""

from __future__ import annotations

from uuid import uuid4

import aiohttp
import nats.aio.client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack
from twincast.client import ask
from twincast_shared.contract import subjects as s

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(stack: Stack, service: str) -> Samples:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{stack.services[service].http.url}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_every_service_serves_metrics(stack: Stack) -> None:
    for service in stack.services:
        samples = await scrape(stack, service)
        assert any(name.startswith("twincast_") for name, _ in samples), service


async def test_a_turn_moves_the_counters_and_histograms(stack: Stack) -> None:
    before = {name: await scrape(stack, name) for name in ("reasoning", "tts")}
    result = await ask(stack.settings, text="How many species of bees did you find on the roofs?")
    assert result.reply
    after = {name: await scrape(stack, name) for name in ("reasoning", "tts")}

    def moved(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    assert moved("reasoning", "twincast_events_total", family="text.in", outcome="handled") == 1
    assert moved("reasoning", "twincast_handler_seconds_count", family="text.in") == 1
    assert moved("reasoning", "twincast_handler_seconds_sum", family="text.in") > 0
    assert moved("tts", "twincast_events_total", family="reply", outcome="handled") >= 1
    assert moved("tts", "twincast_stage_seconds_count", stage="tts_first_audio") == 1
    assert moved("tts", "twincast_stage_seconds_count", stage="tts_synthesis") >= 1
    assert moved("tts", "twincast_stage_seconds_sum", stage="tts_synthesis") > 0
    # FastStream's broker metrics, labelled by subject family, never by session.
    received = "faststream_received_messages_total"
    assert (
        moved(
            "reasoning", received, app_name="reasoning", broker="nats", handler="twincast.text.in"
        )
        == 1
    )
    assert not any(result.session_id in str(key) for key in after["reasoning"])


async def test_a_bad_event_counts_one_rejection(stack: Stack, nc: nats.aio.client.Client) -> None:
    labels = {"service": "reasoning", "reason": "invalid"}
    before = value(await scrape(stack, "reasoning"), "twincast_rejections_total", **labels)
    sub = await nc.subscribe(s.REJECTED.of("reasoning"))
    try:
        await nc.publish(s.TEXT_IN.of(uuid4().hex), b"{not json")
        await sub.next_msg(timeout=5)
    finally:
        await sub.unsubscribe()
    after = value(await scrape(stack, "reasoning"), "twincast_rejections_total", **labels)
    assert after - before == 1
