"""Real Chromium on the guest page: its fake microphone asks, the twin answers in sound and face."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SPEECH, Stack
from tests.test_gateway_rtc import gateway, wait_for
from twincast_testkit.wer import wer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _browser_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("TWINCAST_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")


def question_then_silence(tmp: Path, name: str, silence_s: float, lead_s: float = 3.0) -> Path:
    """Chromium's fake microphone plays its file in a loop from the moment the page opens the
    microphone: a pause while the call connects, one question, then a long pause."""
    with wave.open(str(SPEECH / name), "rb") as src:
        params, pcm = src.getparams(), src.readframes(src.getnframes())
    out = tmp / f"question-{name}"
    with wave.open(str(out), "wb") as dst:
        dst.setparams(params)
        pause = b"\x00" * params.sampwidth
        lead = pause * int(lead_s * params.framerate)
        dst.writeframes(lead + pcm + pause * int(silence_s * params.framerate))
    return out


@pytest.fixture
async def chromium_with_mic(tmp_path: Path) -> AsyncIterator[Any]:
    _browser_or_skip()
    from playwright.async_api import async_playwright

    mic = question_then_silence(tmp_path, "arctic_a0009.wav", silence_s=40)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*FLAGS, f"--use-file-for-fake-audio-capture={mic}"],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def poll(page: Any, ready: Any, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    snap: dict[str, Any] = {}
    while time.monotonic() < deadline:
        snap = await page.evaluate("snapshot()")
        if ready(snap):
            return snap
        await asyncio.sleep(0.2)
    raise AssertionError(f"page never got there: {snap}")


async def test_guest_page_hears_and_sees_the_twin(
    stack: Stack, chromium_with_mic: Any, speech_files: dict[str, str]
) -> None:
    url, service = gateway(stack)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=120)
    page = await chromium_with_mic.new_page()
    await page.goto(f"{url}/join/{token}?autostart=1&raw=1")

    def answered(snap: dict[str, Any]) -> bool:
        guest = [c for c in snap["captions"] if c["who"] == "guest" and c["final"]]
        twin = [c for c in snap["captions"] if c["who"] == "twin" and c["final"]]
        return bool(guest and twin and snap["audio"]["energy"] > 0.01)

    snap = await poll(page, answered, timeout_s=45)
    asked = next(c["text"] for c in snap["captions"] if c["who"] == "guest" and c["final"])
    assert wer(speech_files["arctic_a0009.wav"], asked) <= 0.2, asked
    assert "AI twin" in snap["notice"]
    assert snap["phase"] == "connected"
    # Moving video: frames keep arriving and keep changing.
    seen = (snap["video"]["frames"], snap["video"]["changes"])
    later = await poll(
        page,
        lambda s: s["video"]["frames"] > seen[0] + 20 and s["video"]["changes"] > seen[1] + 5,
        timeout_s=10,
    )
    assert later["animation"]["session_id"] == later["sessionId"]
    # The page shows the captions it got, on screen.
    shown = await page.inner_text("#captions")
    assert asked.split()[0] in shown
    await page.evaluate("hangUp()")
    assert await wait_for(lambda: not service.sessions, timeout_s=10)


async def test_forged_and_expired_links_are_refused(stack: Stack, chromium_with_mic: Any) -> None:
    url, service = gateway(stack)
    expired = service.signer.issue(twin="juniper", scope="public", ttl_s=1, now=time.time() - 10)
    good = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    page = await chromium_with_mic.new_page()
    for token, reason in ((expired, "expired"), (forged, "signature")):
        response = await page.goto(f"{url}/join/{token}")
        assert response is not None
        assert response.status == 401
        assert reason in await page.inner_text("#reason")
