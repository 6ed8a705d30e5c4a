"""Two real Chromiums: a guest on the guest page, the owner on the console. The owner takes
over with their own (fake) microphone, hands back, and approves a draft in shadow mode."""

from __future__ import annotations

import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SPEECH, Stack
from tests.test_browser import CHROMIUM, FLAGS, _browser_or_skip, poll
from tests.test_gateway_rtc import gateway, wait_for
from twincast_testkit.wer import wer


def recording(tmp: Path, name: str | None, *, lead_s: float, total_s: float) -> Path:
    """A fake microphone file: silence, then `name` (if any), then silence to `total_s`."""
    with wave.open(str(SPEECH / "arctic_a0009.wav"), "rb") as src:
        params = src.getparams()
        pcm = src.readframes(src.getnframes()) if name else b""
    pause = b"\x00" * params.sampwidth
    rate = params.framerate
    body = pause * int(lead_s * rate) + pcm
    body += pause * max(0, int(total_s * rate) - len(body) // params.sampwidth)
    out = tmp / f"mic-{name or 'silence'}.wav"
    with wave.open(str(out), "wb") as dst:
        dst.setparams(params)
        dst.writeframes(body)
    return out


@pytest.fixture
async def two_browsers(tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    _browser_or_skip()
    from playwright.async_api import async_playwright

    quiet = recording(tmp_path, None, lead_s=0, total_s=60)
    # The owner speaks 5 s after the console opens the session: after the takeover click.
    owner = recording(tmp_path, "arctic_a0009.wav", lead_s=5, total_s=60)
    async with async_playwright() as p:
        browsers = []
        try:
            for mic in (quiet, owner):
                browsers.append(
                    await p.chromium.launch(
                        executable_path=CHROMIUM,
                        headless=True,
                        args=[*FLAGS, f"--use-file-for-fake-audio-capture={mic}"],
                    )
                )
            yield browsers[0], browsers[1]
        finally:
            for browser in browsers:
                await browser.close()


async def test_owner_takes_over_from_the_console_page(
    stack: Stack, two_browsers: tuple[Any, Any], speech_files: dict[str, str]
) -> None:
    url, service = gateway(stack)
    guest_browser, owner_browser = two_browsers
    guest_token = service.signer.issue(twin="juniper", scope="public", ttl_s=300, guest="ada")
    owner_token = service.signer.issue(twin="juniper", scope="private", ttl_s=300, role="owner")

    guest = await guest_browser.new_page()
    await guest.goto(f"{url}/join/{guest_token}?autostart=1&raw=1")
    joined = await poll(guest, lambda s: s["phase"] == "connected" and s["sessionId"], 20)
    session = joined["sessionId"]

    console = await owner_browser.new_page()
    await console.goto(f"{url}/console/{owner_token}")
    await poll(console, lambda s: any(x["session_id"] == session for x in s["sessions"]), 10)
    await console.evaluate(f"twincast.openSession('{session}')")
    await poll(console, lambda s: s["phase"] == "connected", 20)

    # One click: the owner holds the floor, and the guest is told so.
    before = (await guest.evaluate("snapshot()"))["audio"]["energy"]
    await console.click("#take")
    await poll(console, lambda s: s["floor"] == "owner", 5)
    assert await console.inner_text("#floor") == "you hold the floor: the guest hears you"
    await poll(guest, lambda s: s["floor"] == "owner", 5)
    assert await guest.is_visible("#live")
    # The owner's recorded voice reaches the guest, and the avatar's mouth moves with it.
    heard = await poll(
        guest,
        lambda s: s["audio"]["energy"] > before + 0.01 and s["mouthMax"].get("owner", 0) > 0.2,
        20,
    )
    assert heard["animation"]["session_id"] == session
    owner_said = await poll(
        console,
        lambda s: any(c["who"] == "owner" and c["final"] and c["text"] for c in s["captions"]),
        30,
    )
    said = next(c["text"] for c in owner_said["captions"] if c["who"] == "owner")
    # Through the browser's audio processing and Opus the name varies ("Gregson", "Greggs
    # in"); the sentence is what matters.
    assert wer(speech_files["arctic_a0009.wav"], said) <= 0.25, said
    shown = await guest.inner_text("#captions")
    assert said in shown

    # Hand back: the twin answers the next question knowing what the owner said.
    await console.click("#give")
    await poll(guest, lambda s: s["floor"] == "twin", 5)
    await guest.evaluate("askText('Who did he face across the table?')")
    answered = await poll(
        guest,
        # Only the owner's line says who "faced" whom "across the table".
        lambda s: any(
            c["who"] == "twin"
            and c["final"]
            and "faced" in c["text"].lower()
            and "across the table" in c["text"].lower()
            for c in s["captions"]
        ),
        30,
    )
    assert answered["floor"] == "twin"

    # Shadow mode: the next reply waits for the owner's approval.
    await console.click("#shadow")
    await poll(console, lambda s: s["shadow"], 5)
    replies_before = len([c for c in answered["captions"] if c["who"] == "twin"])
    await guest.evaluate("askText('What did you find on the rooftops?')")
    drafted = await poll(console, lambda s: any(d["status"] == "waiting" for d in s["drafts"]), 20)
    held_since = time.monotonic()
    draft = next(d for d in drafted["drafts"] if d["status"] == "waiting")
    assert await wait_for(lambda: time.monotonic() - held_since > 1.5, timeout_s=3)
    held = await guest.evaluate("snapshot()")
    assert len([c for c in held["captions"] if c["who"] == "twin"]) == replies_before
    await console.click(f"#draft-{draft['draft_id']} >> text=Approve")
    approved = await poll(
        guest,
        lambda s: (
            len([c for c in s["captions"] if c["who"] == "twin" and c["final"]]) > replies_before
        ),
        20,
    )
    spoken = [c for c in approved["captions"] if c["who"] == "twin"][-1]
    assert spoken["text"] in draft["text"]

    # The console shows the audit: the owner's words and the twin's, in order.
    await console.click("#load-audit")
    audit = await poll(console, lambda s: len(s["audit"]) > 3, 10)
    speakers = [r["speaker"] for r in audit["audit"] if r["kind"] == "spoken"]
    assert "owner" in speakers
    assert "twin" in speakers
    await guest.evaluate("hangUp()")
    assert await wait_for(lambda: not service.sessions, timeout_s=10)
