"""Voice to voice over WebRTC on loopback, as a guest's client sees it.

A private stack (NATS, Valkey, the five services as processes) and one aiortc guest that
speaks recorded questions in real time. Every time is a time.monotonic() reading in this
process when audio or a video frame reached it; "speech end" is when the last voiced sample
of the question left its microphone. `speech_ended_bus` is when stt's `SpeechEnded` reached a
subscriber in this process (the gateway hears it at the same moment), `tts_audio_bus` when the
reply's first audio chunk did (for a speculative answer, often before the turn ended).

A/V skew (`av_skew_ms_*`, the target) is lip sync in presentation time, per answer
(`twincast_testkit.lipsync`): the answer's tts chunks (from the bus) are found in the received voice
by their loudness, which times every phoneme of tts's alignment as the guest hears it; the
received mouth is compared with the opening those phonemes ask for, and the lag that lines
them up best is the answer's skew (positive: the mouth is late). Presentation time is each
frame's RTP timestamp mapped to the sender's clock by the RTCP Sender Reports, as a
lip-syncing receiver plays them; a video frame stands for the middle of its 40 ms on screen.
Cross-checks, which compare the mouth with loudness rather than phonemes (a mouth opens
before the sound of a vowel builds, and lips hide s, p, k): `av_onset_skew_ms_*`, the first
frame that shows the mouth open minus the voice's onset after each pause
(`rtc_client.presented_onsets`; at 25 fps an exact face reads within +-20 ms);
`av_presented_offset_*`, the lag that best lines up loudness with mouth opening over the
first 3 s of each answer; `av_arrival_offset_ms_*`, the same as frames *arrive* at this
aiortc client, which plays audio through a 40 ms buffer and video at once, and does no lip
sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import nats
import nats.aio.msg
import psutil

from twincast.runtime import EXAMPLES
from twincast_shared.contract import PcmChunk, VisemeTrack
from twincast_shared.contract import subjects as s
from twincast_testkit.lipsync import MAX_LAG_MS, SpokenChunk, lip_sync, track_lag_ms
from twincast_testkit.rtc_client import (
    TwinCall,
    av_offset_ms,
    presented_offset_ms,
    presented_onsets,
)
from twincast_testkit.stats import percentile
from twincast_testkit.turns import (
    MOUTH_MOVING,
    configure_client_ice,
    live_stack,
    read_speech,
    spoken_turn,
)

REPO = Path(__file__).resolve().parents[2]
QUESTIONS = sorted((EXAMPLES / "juniper" / "questions").glob("*.wav")) + sorted(
    (REPO / "tests" / "data" / "speech").glob("*.wav")
)
LONG_ANSWER = "Tell me everything about the rooftop survey, the bees and the gardens."
SILENT_RUN = 10
QUIET_BETWEEN_S = 1.5


def _pct(values: list[float], q: int) -> float | None:
    return round(percentile(values, q), 1) if values else None


def _mouth_box() -> tuple[int, int, int, int]:
    from twincast_gateway import mouth_box_for

    return mouth_box_for(EXAMPLES / "juniper")


def _first_after(call: TwinCall, kind: str, after: float) -> float | None:
    """When the gateway did `kind` (its own monotonic `at`, same host), first after `after`."""
    return next(
        (m["at"] for t, m in call.received.messages if t >= after and m["type"] == kind), None
    )


async def _barge_in(
    call: TwinCall, pcm: bytes, rate: int, flushes: list[float], ducks: list[float]
) -> float | None:
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
    ducked = _first_after(call, "ducked", onset)
    if ducked is not None:
        ducks.append((ducked - onset) * 1000)
    await asyncio.sleep(0.2)
    # Let the answer to the interruption play out before the next measurement: an answer
    # still playing (or its text still coming) would be taken for the next one's.
    with contextlib.suppress(TimeoutError):
        await call.wait_message(
            lambda m: m["type"] == "reply" and m["final"], after=onset, timeout_s=20
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        heard = call.received.sound[-1] if call.received.sound else 0.0
        if time.monotonic() - heard > QUIET_BETWEEN_S:
            break
        await asyncio.sleep(0.05)
    return None if quiet is None else (quiet - onset) * 1000


async def _run(url: str, nats_url: str, token: str, turns: int, barge_ins: int) -> dict[str, Any]:
    configure_client_ice()
    speech = [read_speech(path) for path in QUESTIONS]
    stages: dict[str, list[float]] = {}
    skews: list[float] = []
    unfit = 0
    track_lags: list[float] = []
    onset_skews: list[float] = []
    fits: list[float] = []
    arrival_offsets: list[float] = []
    presented_offsets: list[float] = []
    barges: list[float] = []
    flushes: list[float] = []
    ducks: list[float] = []
    ended: list[float] = []
    synthesized: dict[str, float] = {}
    spoken: dict[str, dict[int, PcmChunk]] = {}
    tracks: dict[tuple[str, int], VisemeTrack] = {}
    failures = 0
    bus = await nats.connect(nats_url)

    async def on_turn(msg: nats.aio.msg.Msg) -> None:
        if b'"speech_ended"' in msg.data:
            ended.append(time.monotonic())

    async def on_speech(msg: nats.aio.msg.Msg) -> None:
        chunk = PcmChunk.from_wire(msg.data, msg.headers or {})
        synthesized.setdefault(chunk.stream, time.monotonic())
        spoken.setdefault(chunk.stream, {})[chunk.seq] = chunk

    async def on_visemes(msg: nats.aio.msg.Msg) -> None:
        track = VisemeTrack.model_validate_json(msg.data)
        tracks[(track.reply_id, track.seq)] = track

    async with TwinCall(base_url=url, token=token, mouth_box=_mouth_box()) as call:
        await call.connected(timeout_s=20)
        await bus.subscribe(s.TURN.of(call.session_id), cb=on_turn)
        await bus.subscribe(s.TTS_AUDIO.of(call.session_id), cb=on_speech)
        await bus.subscribe(s.TTS_VISEMES.of(call.session_id), cb=on_visemes)
        await spoken_turn(call, *speech[0])  # the greeting turn warms every service
        for i in range(turns):
            pcm, rate = speech[i % len(speech)]
            try:
                turn = await spoken_turn(call, pcm, rate)
            except TimeoutError:
                failures += 1
                continue
            bus_end = next((t for t in ended if t >= turn.speech_end), None)
            if bus_end is not None:
                turn.at["speech_ended_bus"] = bus_end
            if turn.reply_id in synthesized:
                turn.at["tts_audio_bus"] = synthesized[turn.reply_id]
            for stage, ms in turn.stages_ms().items():
                stages.setdefault(stage, []).append(ms)
            sound = turn.at["reply_audio"]
            chunks = spoken.get(turn.reply_id, {})
            reply = [
                SpokenChunk.of(chunks[n], tracks.get((turn.reply_id, n))) for n in sorted(chunks)
            ]
            synced = lip_sync(call.received, reply, heard_from=sound)
            if synced is not None:
                fits.append(synced.correlation)
                if synced.lag_ms is None:
                    unfit += 1
                else:
                    skews.append(synced.lag_ms)
            if (lag := track_lag_ms(reply)) is not None:
                track_lags.append(lag)
            onset_skews += presented_onsets(
                call.received, start=sound - 0.3, end=time.monotonic(), mouth_moving=MOUTH_MOVING
            )
            offset = av_offset_ms(
                call.received.levels, call.received.mouth, start=sound - 0.3, end=sound + 3.0
            )
            if offset is not None:
                arrival_offsets.append(offset)
            offset = presented_offset_ms(call.received, start=sound - 0.3, end=sound + 3.0)
            if offset is not None:
                presented_offsets.append(offset)
            await asyncio.sleep(0.3)
        turns_over = time.monotonic()
        for i in range(barge_ins):
            barge = await _barge_in(call, *speech[(i + 1) % len(speech)], flushes, ducks)
            if barge is not None:
                barges.append(barge)
        messages = call.received.messages
    await bus.drain()
    audio = stages.get("reply_audio", [])
    stray_ducks = [m for t, m in messages if m["type"] == "ducked" and t < turns_over]
    resumed = [m for t, m in messages if m["type"] == "resumed"]
    return {
        "reply_audio_ms_p50": _pct(audio, 50),
        "reply_audio_ms_p95": _pct(audio, 95),
        "mouth_ms_p50": _pct(stages.get("mouth", []), 50),
        "barge_in_ms_p50": _pct(barges, 50),
        # An answer whose mouth fits its voice at no lag within the search counts as that far.
        "av_skew_ms_p95": _pct([abs(x) for x in skews] + [float(MAX_LAG_MS)] * unfit, 95),
        "turns": len(audio),
        "failed_turns": failures,
        "barge_ins": len(barges),
        "barge_in_ms_p95": _pct(barges, 95),
        "barge_in_ms_each": [round(x, 1) for x in barges],
        "barge_in_duck_ms_p50": _pct(ducks, 50),
        "barge_in_flush_ms_p50": _pct(flushes, 50),
        "ducks_in_spoken_turns": len(stray_ducks),
        "resumed_after_duck": len(resumed),
        "av_skew_ms_signed_p50": _pct(skews, 50),
        "av_skew_measured_turns": len(skews),
        "av_skew_unfit_turns": unfit,
        "av_skew_fit_p50": _pct(fits, 50),
        "tts_track_lag_ms_p50": _pct(track_lags, 50),
        "tts_track_lag_ms_p95": _pct([abs(x) for x in track_lags], 95),
        "av_onset_skew_ms_p95": _pct([abs(x) for x in onset_skews], 95),
        "av_onset_skew_ms_signed_p50": _pct(onset_skews, 50),
        "av_onsets": len(onset_skews),
        "av_presented_offset_ms_p95": _pct([abs(x) for x in presented_offsets], 95),
        "av_presented_offset_ms_signed_p50": _pct(presented_offsets, 50),
        "av_presented_measured_turns": len(presented_offsets),
        "av_arrival_offset_ms_p95": _pct([abs(x) for x in arrival_offsets], 95),
        "av_arrival_offset_ms_signed_p50": _pct(arrival_offsets, 50),
        "av_arrival_measured_turns": len(arrival_offsets),
        "after_speech_end_ms_p50": {k: _pct(v, 50) for k, v in stages.items()},
        "after_speech_end_ms_p95": {k: _pct(v, 95) for k, v in stages.items()},
        "cpu_count": psutil.cpu_count(),
        "load_avg_1m": round(psutil.getloadavg()[0], 2),
    }


def run(*, turns: int = 20, barge_ins: int = 8) -> dict[str, Any]:
    with live_stack() as (urls, token):
        assert urls.gateway is not None
        return asyncio.run(_run(urls.gateway, urls.nats, token, turns, barge_ins))
