"""The live avatar over real WebRTC (aiortc client), through the real bus and all services."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import SPEECH, Stack
from twincast.runtime import EXAMPLES
from twincast_gateway import GatewayService, mouth_box_for
from twincast_testkit.demo import DEFAULT_QUESTION
from twincast_testkit.rtc_client import TwinCall
from twincast_testkit.turns import MOUTH_MOVING, read_speech, spoken_turn
from twincast_testkit.wer import wer


def gateway(stack: Stack) -> tuple[str, GatewayService]:
    running = stack.services["gateway"]
    service = running.service
    assert isinstance(service, GatewayService)
    return running.http.url, service


async def wait_for(ready: Callable[[], object], timeout_s: float) -> bool:
    """Polls `ready` until it is truthy or time runs out; the caller asserts on the result."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def read_wav(name: str) -> tuple[bytes, int]:
    with wave.open(str(SPEECH / name), "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


def texts(messages: list[tuple[float, dict[str, Any]]], kind: str) -> list[str]:
    return [m["text"] for _, m in messages if m["type"] == kind]


async def test_spoken_question_gets_spoken_answer_with_moving_face(
    stack: Stack, speech_files: dict[str, str]
) -> None:
    url, service = gateway(stack)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    pcm, rate = read_wav("arctic_a0009.wav")
    box = mouth_box_for(EXAMPLES / "juniper")
    async with TwinCall(base_url=url, token=token, mouth_box=box) as call:
        await call.connected()
        started = time.monotonic()
        said = await call.mic.say(pcm, rate)
        final_at, final = await call.wait_message(
            lambda m: m["type"] == "caption" and m["final"], timeout_s=30
        )
        _, reply = await call.wait_message(lambda m: m["type"] == "reply", timeout_s=30)
        await wait_for(lambda: call.received.first_sound_after(said[1]), timeout_s=20)
        heard = call.received.first_sound_after(said[1])
        await asyncio.sleep(1.5)  # the answer plays on
        frames = [t for t in call.received.frames if t > started]
        animation = [a for t, a in call.received.animation if t > started]
        resting = [m for t, m in call.received.mouth if started < t < said[1]]
        talking = [m for t, m in call.received.mouth if heard and heard <= t]
    assert wer(speech_files["arctic_a0009.wav"], final["text"]) <= 0.2, final
    assert reply["text"]
    assert heard is not None, "no reply audio reached the guest"
    # The face kept coming at about 25 fps the whole time, and its animation stream with it.
    span = frames[-1] - frames[0]
    assert len(frames) / span > 15, (len(frames), span)
    assert any(a["mouth_open"] > 0.2 for a in animation)
    # The mouth opens in the video itself once the answer plays, and stays shut before.
    assert max(talking) > 2 * max(max(resting), MOUTH_MOVING / 2), (max(resting), max(talking))
    assert {a["session_id"] for a in animation} == {call.session_id}
    assert final_at > said[0]
    assert not service.sessions, "hang-up must close the session"


async def test_typed_question_on_the_data_channel(stack: Stack) -> None:
    url, service = gateway(stack)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    async with TwinCall(base_url=url, token=token) as call:
        await call.connected()
        call.send_raw("{not json")
        _, error = await call.wait_message(lambda m: m["type"] == "error", timeout_s=5)
        call.ask_text("What did you find on the rooftops?")
        await call.wait_message(lambda m: m["type"] == "reply" and m["final"], timeout_s=30)
    assert "refused" in error["error"]
    replies = " ".join(texts(call.received.messages, "reply")).lower()
    assert "ai twin" in replies


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ("nonsense", 400, "expected JSON"),
        ('{"token": "a.b", "sdp": "v=0"}', 401, "signature"),
    ],
)
async def test_bad_signalling_gets_clear_4xx(
    stack: Stack, body: str, status: int, reason: str
) -> None:
    import aiohttp

    url, _ = gateway(stack)
    async with aiohttp.ClientSession() as http, http.post(f"{url}/api/sessions", data=body) as r:
        assert r.status == status
        assert reason in (await r.json())["error"]


async def test_the_demos_question_is_heard_and_answered_from_her_writing(stack: Stack) -> None:
    """What a newcomer's first `twincast demo` shows: the recorded question is heard as asked
    and answered with a source, not passed on."""
    url, service = gateway(stack)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    async with TwinCall(base_url=url, token=token) as call:
        await call.connected()
        turn = await spoken_turn(call, *read_speech(DEFAULT_QUESTION))
    assert wer("What did you find up on the roofs?", turn.transcript) <= 0.2, turn.transcript
    assert not turn.deferred, turn.reply
    assert turn.citations, turn.reply
