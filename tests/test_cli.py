"""The `twincast ask` command as a user runs it, against services on the real bus."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.conftest import SPEECH, Stack, run_twincast
from twincast_testkit.wer import wer


async def test_ask_audio_json(stack: Stack, tmp_path: Path, speech_files: dict[str, str]) -> None:
    out = tmp_path / "answer.wav"
    code, stdout, stderr = await run_twincast(
        "ask",
        "--audio",
        str(SPEECH / "arctic_a0009.wav"),
        "--json",
        "--out",
        str(out),
        "--nats-url",
        stack.settings.nats_url,
        "--redis-url",
        stack.settings.redis_url,
    )
    assert code == 0, stderr
    result = json.loads(stdout)
    assert {"transcript", "reply", "reply_wav", "timings_ms"} <= result.keys()
    assert wer(speech_files["arctic_a0009.wav"], result["transcript"]) <= 0.2
    assert result["reply"]
    assert result["reply_wav"] == str(out)
    assert out.stat().st_size > 44_100
    assert all(isinstance(v, float) and v >= 0 for v in result["timings_ms"].values())


async def test_ask_rejects_a_non_wav_file_clearly(stack: Stack, tmp_path: Path) -> None:
    bogus = tmp_path / "question.wav"
    bogus.write_text("hello")
    code, _, stderr = await run_twincast(
        "ask",
        "--audio",
        str(bogus),
        "--nats-url",
        stack.settings.nats_url,
        "--redis-url",
        stack.settings.redis_url,
    )
    assert code == 1
    assert "not a PCM WAV file" in stderr


async def test_ask_needs_a_question(stack: Stack) -> None:
    code, _, stderr = await run_twincast("ask")
    assert code == 2
    assert "give either a QUESTION or --audio" in stderr


async def test_twin_ask_and_people(stack: Stack) -> None:
    guest = "cli-guest-1"
    code, stdout, stderr = await run_twincast(
        "twin",
        "ask",
        "juniper",
        "Hi, my name is Ada. What should I plant on my balcony?",
        "--guest",
        guest,
        "--json",
        "--nats-url",
        stack.settings.nats_url,
        "--redis-url",
        stack.settings.redis_url,
    )
    assert code == 0, stderr
    result = json.loads(stdout)
    assert {"reply", "citations", "deferred"} <= result.keys()
    assert not result["deferred"]
    assert result["citations"][0]["source_id"] == "balcony-planting-for-pollinators.md"
    await asyncio.sleep(0.5)  # memory is written just after the reply goes out
    code, stdout, stderr = await run_twincast(
        "twin", "people", "juniper", "--json", "--redis-url", stack.settings.redis_url
    )
    assert code == 0, stderr
    people = {p["guest_id"]: p for p in json.loads(stdout)}
    assert people[guest]["name"] == "Ada"
    code, stdout, _ = await run_twincast(
        "twin", "people", "juniper", "--delete", guest, "--redis-url", stack.settings.redis_url
    )
    assert json.loads(stdout) == {"deleted": True}
