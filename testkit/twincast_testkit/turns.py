"""A guest's spoken turn over WebRTC, and a private live stack to take it on.

Used by `twincast demo`, the end-to-end benchmark and the tests.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twincast.runtime import StackUrls, private_stack
from twincast.services import SERVICES
from twincast_testkit.rtc_client import TwinCall

# Percent of the mouth box that opened into dark mouth interior; at rest the head's motion
# moves it by at most 0.3 (measured on the sample twin).
MOUTH_MOVING = 0.4


def read_speech(path: Path) -> tuple[bytes, int]:
    """A mono PCM16 WAV, with silence trimmed from both ends so its end is the end of speech."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono 16-bit PCM")
        rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    window = rate // 100
    frames = len(samples) // window
    if frames == 0:
        raise ValueError(f"{path}: no audio")
    energy = np.sqrt(np.mean(samples[: frames * window].reshape(frames, window) ** 2, axis=1))
    voiced = np.flatnonzero(energy > max(200.0, 0.05 * float(energy.max())))
    if voiced.size == 0:
        raise ValueError(f"{path}: no speech found")
    start, end = max(0, voiced[0] - 2) * window, min(frames, voiced[-1] + 3) * window
    return pcm[start * 2 : end * 2], rate


@dataclass
class Turn:
    transcript: str = ""
    reply: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    deferred: bool = False
    reply_id: str = ""
    speech_end: float = 0.0
    at: dict[str, float] = field(default_factory=dict)

    def stages_ms(self) -> dict[str, float]:
        """Milliseconds after the end of the guest's speech, as the guest's client saw them."""
        return {k: round((v - self.speech_end) * 1000, 1) for k, v in self.at.items()}


async def spoken_turn(
    call: TwinCall, pcm: bytes, rate: int, *, timeout_s: float = 30.0, linger_s: float = 0.8
) -> Turn:
    """Speaks, then waits for the whole answer: its words, its sound and its moving mouth."""
    first, last = await call.mic.say(pcm, rate)
    turn = Turn(speech_end=last)
    t, final = await call.wait_message(
        lambda m: m["type"] == "caption" and m["final"], after=first, timeout_s=timeout_s
    )
    turn.transcript, turn.at["transcript"] = final["text"], t
    t, reply = await call.wait_message(lambda m: m["type"] == "reply", after=t, timeout_s=timeout_s)
    turn.at["reply_text"] = t
    reply_id = turn.reply_id = reply["reply_id"]
    await call.wait_message(
        lambda m: m["type"] == "reply" and m["reply_id"] == reply_id and m["final"],
        after=first,
        timeout_s=timeout_s,
    )
    deadline = time.monotonic() + timeout_s
    while (sound := call.received.first_sound_after(last)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no reply audio reached the client")
        await asyncio.sleep(0.02)
    turn.at["reply_audio"] = sound
    for _, m in call.received.messages:
        if m["type"] == "speaking" and m["reply_id"] == reply_id:
            turn.at["gateway_audio"] = m["at"]
    while True:
        heard = [x for x in call.received.sound if x >= sound]
        if heard and time.monotonic() - heard[-1] > linger_s:
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    mouth = next((t for t, m in call.received.mouth if t >= last and m > MOUTH_MOVING), None)
    if mouth is not None:
        turn.at["mouth"] = mouth
    parts = [
        m for _, m in call.received.messages if m["type"] == "reply" and m["reply_id"] == reply_id
    ]
    turn.reply = " ".join(m["text"] for m in sorted(parts, key=lambda m: m["seq"])).strip()
    # Each sentence of the answer cites its sources; a source is listed once.
    cited = {(c["title"], c.get("location")): c for m in parts for c in m["citations"]}
    turn.citations = list(cited.values())
    turn.deferred = any(m["deferred"] for m in parts)
    return turn


@contextmanager
def live_stack(*, twin: str = "juniper") -> Iterator[tuple[StackUrls, str]]:
    """A private stack with the gateway on loopback; yields its URLs and a fresh join token."""
    from twincast_gateway import TokenSigner

    secret = secrets.token_bytes(32)
    env = {"TWINCAST_GATEWAY_SECRET": secret.hex(), "TWINCAST_ICE_ADDRESSES": '["127.0.0.1"]'}
    with private_stack(SERVICES, twin=twin, env=env) as urls:
        token = TokenSigner(secret=secret).issue(twin=twin, scope="public", ttl_s=3600)
        yield urls, token


def configure_client_ice() -> None:
    from twincast_gateway import configure_ice

    configure_ice(addresses=["127.0.0.1"], mdns=False)
