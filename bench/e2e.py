"""Voice to voice over WebRTC on loopback, as a guest's client sees it.

A private stack (NATS, Valkey, the five services as processes) and one aiortc guest that
speaks recorded questions in real time. Every time is a time.monotonic() reading in this
process when audio or a video frame reached it; "speech end" is when the last voiced sample
of the question left its microphone.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

import psutil

from twincast.demo import configure_client_ice, live_stack, read_speech, spoken_turn
from twincast.rtc_client import TwinCall, av_offset_ms
from twincast.runtime import EXAMPLES

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = sorted((EXAMPLES / "juniper" / "questions").glob("*.wav")) + sorted(
    (REPO / "tests" / "data" / "speech").glob("*.wav")
)
LONG_ANSWER = "Tell me everything about the rooftop survey, the bees and the gardens."
SILENT_RUN = 10


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) < 3:
        return round(max(values), 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def _mouth_box() -> tuple[int, int, int, int]:
    from twincast_gateway.faces import mouth_box_for

    return mouth_box_for(EXAMPLES / "juniper")


async def _barge_in(call: TwinCall, pcm: bytes, rate: int, flushes: list[float]) -> float | None:
    """Ask for a long answer, talk over it once it plays; ms from onset to silence."""
    asked = time.monotonic()
    call.ask_text(LONG_ANSWER)
    deadline = asked + 30
    while call.received.first_sound_after(asked) is None:
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.4)
    onset, _ = await call.mic.say(pcm, rate)
    quiet = call.received.first_silence_after(onset, frames=SILENT_RUN)
    flushed = next(
        (t for t, m in call.received.messages if t >= onset and m["type"] == "interrupted"), None
    )
    if flushed is not None:
        flushes.append((flushed - onset) * 1000)
    await asyncio.sleep(0.2)
    # Let the answer to the interruption play out before the next measurement.
    with contextlib.suppress(TimeoutError):
        await call.wait_message(
            lambda m: m["type"] == "reply" and m["final"], after=onset, timeout_s=20
        )
    await asyncio.sleep(3.0)
    return None if quiet is None else (quiet - onset) * 1000


async def _run(url: str, token: str, turns: int, barge_ins: int) -> dict[str, Any]:
    configure_client_ice()
    speech = [read_speech(path) for path in QUESTIONS]
    stages: dict[str, list[float]] = {}
    skews: list[float] = []
    barges: list[float] = []
    flushes: list[float] = []
    failures = 0
    async with TwinCall(base_url=url, token=token, mouth_box=_mouth_box()) as call:
        await call.connected(timeout_s=20)
        await spoken_turn(call, *speech[0])  # the greeting turn warms every service
        for i in range(turns):
            pcm, rate = speech[i % len(speech)]
            try:
                turn = await spoken_turn(call, pcm, rate)
            except TimeoutError:
                failures += 1
                continue
            for stage, ms in turn.stages_ms().items():
                stages.setdefault(stage, []).append(ms)
            sound = turn.at["reply_audio"]
            offset = av_offset_ms(
                call.received.levels, call.received.mouth, start=sound - 0.3, end=sound + 3.0
            )
            if offset is not None:
                skews.append(offset)
            await asyncio.sleep(0.3)
        for i in range(barge_ins):
            barge = await _barge_in(call, *speech[(i + 1) % len(speech)], flushes)
            if barge is not None:
                barges.append(barge)
    audio = stages.get("reply_audio", [])
    return {
        "reply_audio_ms_p50": _pct(audio, 50),
        "reply_audio_ms_p95": _pct(audio, 95),
        "mouth_ms_p50": _pct(stages.get("mouth", []), 50),
        "barge_in_ms_p50": _pct(barges, 50),
        "av_skew_ms_p95": _pct([abs(x) for x in skews], 95),
        "turns": len(audio),
        "failed_turns": failures,
        "barge_ins": len(barges),
        "barge_in_flush_ms_p50": _pct(flushes, 50),
        "av_measured_turns": len(skews),
        "after_speech_end_ms_p50": {k: _pct(v, 50) for k, v in stages.items()},
        "after_speech_end_ms_p95": {k: _pct(v, 95) for k, v in stages.items()},
        "av_skew_ms_signed_p50": _pct(skews, 50),
        "cpu_count": psutil.cpu_count(),
        "load_avg_1m": round(psutil.getloadavg()[0], 2),
    }


def run(*, turns: int = 20, barge_ins: int = 8) -> dict[str, Any]:
    with live_stack() as (urls, token):
        assert urls.gateway is not None
        return asyncio.run(_run(urls.gateway, token, turns, barge_ins))
