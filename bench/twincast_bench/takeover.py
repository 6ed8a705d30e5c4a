"""The owner takes over and hands back, as the guest hears it, over WebRTC on loopback.

A private stack, one aiortc guest and one aiortc owner console. The console's microphone
plays a steady 1 kHz tone, so that the guest can tell the owner's voice from the twin's in
every 20 ms frame it receives. Half the takeovers cut into the twin mid-answer.

takeover: from the click (the console's POST) to the first frame of the owner's voice
at the guest. handback: from the click to the guest being told the twin has the floor again;
handback_answer: from the click to the first sound of the twin answering a question the guest
typed as soon as the floor was back.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

import av
import numpy as np
import psutil
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from twincast.runtime import private_stack
from twincast.services import SERVICES
from twincast_testkit.console_client import OwnerConsoleClient
from twincast_testkit.rtc_client import SPEECH_RMS, TwinCall
from twincast_testkit.stats import percentile
from twincast_testkit.turns import configure_client_ice

TONE_HZ = 1_000
RATE = 48_000
FRAME = RATE // 50
LONG_ANSWER = "Tell me everything about the rooftop survey, the bees and the gardens."
SHORT_QUESTION = "What did you find on the rooftops?"


def _pct(values: list[float], q: int) -> float | None:
    return round(percentile(values, q), 1) if values else None


def tone(seconds: float, *, amplitude: int = 6_000) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2").tobytes()


def tone_share(frame: np.ndarray) -> float:
    """How much of a 20 ms frame's energy is the owner's 1 kHz tone (1.0: nothing else)."""
    x = frame.astype(np.float64)
    power = float(np.mean(x * x))
    if power <= SPEECH_RMS**2:
        return 0.0
    n = len(x)
    phase = np.exp(-2j * np.pi * TONE_HZ * np.arange(n) / RATE)
    bin_power = 2 * abs(np.dot(x, phase)) ** 2 / (n * n)
    return float(min(1.0, bin_power / power))


class ListeningGuest(TwinCall):
    """A guest that also notes, per frame received, whether it is the owner's tone."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owner_frames: list[tuple[float, bool]] = []

    async def _audio(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                assert isinstance(frame, av.AudioFrame)
                # Decoded Opus comes as interleaved stereo: one channel is enough.
                pcm = frame.to_ndarray().reshape(-1)[:: len(frame.layout.channels)]
                rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0
                self.received.levels.append((now, rms))
                if rms > SPEECH_RMS:
                    self.received.sound.append(now)
                self.owner_frames.append((now, tone_share(pcm) > 0.6))

    def first_owner_after(self, t: float) -> float | None:
        return next((x for x, owner in self.owner_frames if x >= t and owner), None)

    def owner_gone_after(self, t: float, *, frames: int = 5) -> float | None:
        run: list[float] = []
        for x, owner in self.owner_frames:
            if x < t:
                continue
            run = [] if owner else [*run, x]
            if len(run) >= frames:
                return run[0]
        return None

    def twin_gone_after(self, t: float) -> float | None:
        """The first frame after `t` that is not the twin talking: silence or the owner."""
        loud = dict(self.received.levels)
        return next(
            (x for x, owner in self.owner_frames if x >= t and (owner or loud[x] <= SPEECH_RMS)),
            None,
        )

    def twin_sound_after(self, t: float) -> float | None:
        owner_at = dict(self.owner_frames)
        return next((x for x in self.received.sound if x >= t and not owner_at.get(x)), None)


async def _wait(found: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while (value := found()) is None:
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.005)
    return value


async def _run(url: str, guest_token: str, owner_token: str, runs: int) -> dict[str, Any]:
    configure_client_ice()
    stages: dict[str, list[float]] = {}
    failures = 0

    def note(stage: str, start: float, end: float | None) -> None:
        if end is not None:
            stages.setdefault(stage, []).append((end - start) * 1000)

    guest = ListeningGuest(base_url=url, token=guest_token)
    async with guest, OwnerConsoleClient(base_url=url, token=owner_token) as console:
        await guest.connected(timeout_s=30)
        await console.open(guest.session_id)
        await console.connected()
        # The owner keeps talking (a tone) the whole time; the guest hears it only while the
        # console holds the floor.
        console.mic.say(tone(runs * 12 + 60), RATE)
        for run in range(runs):
            busy = run % 2 == 1
            if busy:
                asked = time.monotonic()
                guest.ask_text(LONG_ANSWER)
                if await _wait(lambda a=asked: guest.twin_sound_after(a), 30) is None:
                    failures += 1
                    continue
                await asyncio.sleep(0.5)
            else:
                await asyncio.sleep(1.0)
            clicked = time.monotonic()
            await console.take_over()
            answered = time.monotonic()
            heard = await _wait(lambda c=clicked: guest.first_owner_after(c), 5)
            if heard is None:
                failures += 1
            note("takeover_busy" if busy else "takeover_idle", clicked, heard)
            note("takeover", clicked, heard)
            note("takeover_http", clicked, answered)
            note("takeover_after_http", answered, heard)
            if busy:
                note("twin_cut", clicked, guest.twin_gone_after(clicked))
            await asyncio.sleep(1.0)

            clicked = time.monotonic()
            await console.hand_back()
            answered = time.monotonic()
            guest.ask_text(SHORT_QUESTION)
            back_at, _ = await guest.wait_message(
                lambda m: m["type"] == "floor" and m["holder"] == "twin", after=clicked
            )
            note("handback", clicked, back_at)
            note("handback_http", clicked, answered)
            spoke = await _wait(lambda c=answered: guest.twin_sound_after(c), 20)
            note("handback_answer", clicked, spoke)
            with contextlib.suppress(TimeoutError):
                await guest.wait_message(
                    lambda m: m["type"] == "reply" and m["final"], after=clicked, timeout_s=20
                )
            note("owner_gone", clicked, guest.owner_gone_after(clicked))
            await asyncio.sleep(2.5)

    return {
        "takeover_ms_p50": _pct(stages.get("takeover", []), 50),
        "takeover_ms_p95": _pct(stages.get("takeover", []), 95),
        "handback_ms_p50": _pct(stages.get("handback", []), 50),
        "handback_ms_p95": _pct(stages.get("handback", []), 95),
        "handback_answer_ms_p50": _pct(stages.get("handback_answer", []), 50),
        "runs": runs,
        "failures": failures,
        "stages_ms_p50": {k: _pct(v, 50) for k, v in sorted(stages.items())},
        "load_1m": round(psutil.getloadavg()[0], 2),
    }


def run(*, runs: int = 12) -> dict[str, Any]:
    from twincast_gateway import TokenSigner

    secret = secrets.token_bytes(32)
    env = {"TWINCAST_GATEWAY_SECRET": secret.hex(), "TWINCAST_ICE_ADDRESSES": '["127.0.0.1"]'}
    signer = TokenSigner(secret=secret)
    with private_stack(SERVICES, twin="juniper", env=env) as urls:
        guest = signer.issue(twin="juniper", scope="public", ttl_s=3600)
        owner = signer.issue(twin="juniper", scope="private", ttl_s=3600, role="owner")
        assert urls.gateway is not None
        return asyncio.run(_run(urls.gateway, guest, owner, runs))
