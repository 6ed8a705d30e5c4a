"""`twincast bench stt`: recorded speech streamed in real time through the stt service.

Speech onset and end are found in each recording by its energy (not by the service's VAD),
so the latencies below are measured against the audio itself.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np

from twincast.client import stream_speech
from twincast.runtime import private_stack
from twincast_shared.bus import Bus, make_broker
from twincast_shared.contract import SpeechEnded, SpeechStarted, TurnEvent, UtteranceTranscribed
from twincast_shared.contract import subjects as s
from twincast_shared.sessions import SessionInfo, open_session
from twincast_shared.settings import CommonSettings
from twincast_shared.store import StateStore
from twincast_stt.engine import SttEngine
from twincast_testkit.stats import percentile
from twincast_testkit.wer import wer

SPEECH = Path(__file__).resolve().parents[2] / "tests" / "data" / "speech"
TAIL_SILENCE_MS = 1500


def speech_bounds(pcm: bytes, *, rate: int = 16_000, min_run: int = 5) -> tuple[float, float]:
    """Start and end of speech in seconds: the first and last run of `min_run` 10 ms frames
    clearly above the recording's noise floor."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    hop = rate // 100
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-9)
    floor, peak = float(np.percentile(level, 10)), float(level.max())
    loud = level > max(floor + 15.0, peak - 30.0)
    runs = np.flatnonzero(np.convolve(loud, np.ones(min_run), mode="valid") == min_run)
    return runs[0] / 100, (runs[-1] + min_run) / 100


def recordings() -> list[tuple[str, bytes, str]]:
    rows = (SPEECH / "transcripts.tsv").read_text().strip().splitlines()
    out = []
    for name, text in (row.split("\t", 1) for row in rows):
        with wave.open(str(SPEECH / name)) as wav:
            out.append((name, wav.readframes(wav.getnframes()), text))
    return out


@dataclass
class _Turn:
    started: float | None = None
    ended: float | None = None
    ended_at_ms: float | None = None
    final: UtteranceTranscribed | None = None
    final_at: float | None = None
    partials: list[tuple[float, UtteranceTranscribed]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _pct(values: list[float], q: float) -> float:
    return round(percentile(values, q), 1) if values else float("nan")


async def _measure(settings: CommonSettings, runs: int) -> dict[str, Any]:
    broker = make_broker(settings, service="bench-stt")
    bus = Bus(broker, service="bench-stt")
    turns: dict[str, _Turn] = {}

    @broker.subscriber(s.TURN.all)
    async def on_turn(event: TurnEvent) -> None:
        turn = turns.get(event.session_id)
        if turn is None:
            return
        if isinstance(event, SpeechStarted) and turn.started is None:
            turn.started = time.perf_counter()
        elif isinstance(event, SpeechEnded):
            turn.ended = time.perf_counter()
            turn.ended_at_ms = event.at_ms
            turn.done.set()

    @broker.subscriber(s.STT_FINAL.all)
    async def on_final(event: UtteranceTranscribed) -> None:
        turn = turns.get(event.session_id)
        if turn is not None and turn.final is None:
            turn.final, turn.final_at = event, time.perf_counter()

    @broker.subscriber(s.STT_PARTIAL.all)
    async def on_partial(event: UtteranceTranscribed) -> None:
        turn = turns.get(event.session_id)
        if turn is not None:
            turn.partials.append((time.perf_counter(), event))

    store = StateStore.from_url(settings.redis_url)
    rows: list[dict[str, Any]] = []
    try:
        await broker.start()
        for _ in range(runs):
            for name, pcm, reference in recordings():
                session = uuid4().hex
                await open_session(store, SessionInfo(session_id=session, twin_id="bench"))
                turn = turns[session] = _Turn()
                onset_s, end_s = speech_bounds(pcm)
                start = await stream_speech(
                    bus, session, pcm, realtime=True, tail_silence_ms=TAIL_SILENCE_MS, last=False
                )
                await asyncio.wait_for(turn.done.wait(), timeout=15)
                await asyncio.sleep(0.2)
                if turn.final is None or turn.final_at is None or turn.started is None:
                    raise RuntimeError(f"{name}: the turn ended without a final transcript")
                partial_times = [t for t, _ in turn.partials if t < turn.final_at]
                gaps = np.diff([start + onset_s, *partial_times]).tolist()
                compute = sum(p.compute_ms for _, p in turn.partials) + turn.final.compute_ms
                rows.append(
                    {
                        "file": name,
                        "wer": wer(reference, turn.final.text),
                        "speech_start_ms": 1000 * (turn.started - (start + onset_s)),
                        "final_after_speech_end_ms": 1000 * (turn.final_at - (start + end_s)),
                        "vad_end_lag_ms": (turn.ended_at_ms or 0) - 1000 * end_s,
                        "final_compute_ms": turn.final.compute_ms,
                        "partials": len(partial_times),
                        "partial_gap_ms_max": 1000 * max(gaps) if gaps else None,
                        "partial_gaps_ms": [1000 * g for g in gaps],
                        "rtf": compute / (1000 * len(pcm) / 2 / 16_000),
                    }
                )
    finally:
        await broker.stop()
        await store.close()
    return {"rows": rows}


def run_stt_bench(*, runs: int = 5) -> dict[str, Any]:
    with private_stack(("stt",), twin="bench", log_to=io.StringIO()) as urls:
        settings = CommonSettings(nats_url=urls.nats, redis_url=urls.redis)
        measured = asyncio.run(_measure(settings, runs))
    rows = measured["rows"]
    engine = SttEngine()
    engine.load()
    offline = [wer(text, engine.transcribe_offline(pcm)) for _, pcm, text in recordings()]
    streaming_wer = float(np.mean([r["wer"] for r in rows]))
    offline_wer = float(np.mean(offline))
    gaps = [g for r in rows for g in r["partial_gaps_ms"]]
    return {
        "wer": round(streaming_wer, 4),
        "wer_offline": round(offline_wer, 4),
        "wer_delta": round(streaming_wer - offline_wer, 4),
        "speech_start_ms_p50": _pct([r["speech_start_ms"] for r in rows], 50),
        "speech_start_ms_p95": _pct([r["speech_start_ms"] for r in rows], 95),
        "final_after_speech_end_ms_p50": _pct([r["final_after_speech_end_ms"] for r in rows], 50),
        "final_after_speech_end_ms_p95": _pct([r["final_after_speech_end_ms"] for r in rows], 95),
        "rtf": round(float(np.median([r["rtf"] for r in rows])), 3),
        "breakdown_ms_p50": {
            "vad_end_lag": _pct([r["vad_end_lag_ms"] for r in rows], 50),
            "final_compute": _pct([r["final_compute_ms"] for r in rows], 50),
        },
        "partial_gap_ms_p50": _pct(gaps, 50),
        "partial_gap_ms_p95": _pct(gaps, 95),
        "partial_gap_ms_max": _pct(gaps, 100),
        # The first gap alone: speech onset to the first partial.
        "first_partial_ms_p50": _pct([r["partial_gaps_ms"][0] for r in rows if r["partials"]], 50),
        "first_partial_ms_p95": _pct([r["partial_gaps_ms"][0] for r in rows if r["partials"]], 95),
        "partials_per_turn_p50": _pct([float(r["partials"]) for r in rows], 50),
        "turns": len(rows),
        "runs": runs,
        "files": sorted({r["file"] for r in rows}),
    }
