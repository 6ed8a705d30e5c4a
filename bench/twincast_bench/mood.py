"""`twincast bench mood`: the guest mood estimate on the labelled set in `examples/mood/`.

Each item is one guest turn in a fresh session: the speaker's three calibration lines (their
normal voice, spoken a minute earlier, so they set the baseline and have left the window),
then the item's audio in 20 ms frames, then its final transcript (the line's text: perfect
speech recognition is assumed, to measure mood and not stt). The mood after the transcript
is the answer. *text* is the same engine with prosody off (the baseline: words only);
*fused* is words and voice. The two recorded ARCTIC sentences (read speech, calm, another
speaker) are scored with no calibration at all.

`latency_ms_p50` is engine time, from the final transcript (the last input) to the estimate
computed, in this process; `bus` measures the same over a real nats-server with the mood
service in its own process: publishing the final transcript → `MoodEstimated` received.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from twincast_bench.mood_set import MOOD_SET, Line, audio_path, lines, load_pcm
from twincast_mood.engine import GuestMood
from twincast_mood.labels import LABELS
from twincast_mood.text import TextMoodEngine
from twincast_testkit.stats import percentile

FRAME_BYTES: Final = 640
SPEECH: Final = Path(__file__).resolve().parents[2] / "tests" / "data" / "speech"
RECORDED: Final = (
    Line("r1", "calm", "recorded", "And you always want to see it in the superlative degree."),
    Line("r2", "calm", "recorded", "He turned sharply, and faced Gregson across the table."),
)


class _Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True, slots=True)
class Outcome:
    line: Line
    text: str
    fused: str
    confidence: float
    latency_ms: float


def _pcm(line: Line, root: Path) -> bytes:
    if line.kind == "recorded":
        # The recordings end within 300 ms of the last word; a live stream goes on, quiet.
        name = f"arctic_a000{7 if line.id == 'r1' else 9}.wav"
        return load_pcm(SPEECH / name) + bytes(16_000)
    return load_pcm(audio_path(line, root))


def _turn(guest: GuestMood, clock: _Clock, pcm: bytes, text: str | None) -> float:
    for start in range(0, len(pcm), FRAME_BYTES):
        clock.t += 0.02
        guest.hear(pcm[start : start + FRAME_BYTES])
    if text is None:
        return 0.0
    clock.t += 0.1
    started = time.perf_counter()
    guest.read(text, key=f"u{clock.t:.0f}")
    guest.current()
    return 1000 * (time.perf_counter() - started)


def evaluate(root: Path = MOOD_SET) -> list[Outcome]:
    engine = TextMoodEngine()
    every = lines(root)
    calibration = [_pcm(line, root) for line in every if line.kind == "calibration"]
    items = [line for line in every if line.kind != "calibration"] + list(RECORDED)
    outcomes = []
    for line in items:
        pcm = _pcm(line, root)
        results = []
        for voice in (False, True):
            clock = _Clock()
            guest = GuestMood(engine, clock=clock, voice=voice)
            if line.kind != "recorded":
                for calm in calibration:
                    _turn(guest, clock, calm, None)
                clock.t += 60.0  # the calibration turns have left the window
            latency = _turn(guest, clock, pcm, line.text)
            results.append((guest.current(), latency))
        (text, _), (fused, latency) = results
        outcomes.append(Outcome(line, text.label, fused.label, fused.confidence, latency))
    return outcomes


def _accuracy(outcomes: list[Outcome], which: str) -> float:
    if not outcomes:
        return 0.0
    right = sum(str(getattr(o, which)) == o.line.label for o in outcomes)
    return round(right / len(outcomes), 3)


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    per_label: dict[str, Any] = {}
    for label in LABELS:
        mine = [o for o in outcomes if o.line.label == label]
        per_label[label] = {
            "n": len(mine),
            "text": _accuracy(mine, "text"),
            "fused": _accuracy(mine, "fused"),
        }
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_kind[o.line.kind].append(o)
    per_kind = {
        kind: {"n": len(os), "text": _accuracy(os, "text"), "fused": _accuracy(os, "fused")}
        for kind, os in sorted(by_kind.items())
    }
    confusion: Counter[str] = Counter(
        f"{o.line.label}->{o.fused}" for o in outcomes if o.fused != o.line.label
    )
    latencies = sorted(o.latency_ms for o in outcomes)
    return {
        "items": len(outcomes),
        "text_accuracy": _accuracy(outcomes, "text"),
        "fused_accuracy": _accuracy(outcomes, "fused"),
        "latency_ms_p50": round(statistics.median(latencies), 3),
        "latency_ms_p95": round(percentile(latencies, 95), 3),
        "latency_is": "engine: final transcript in -> fused estimate computed (audio already in)",
        "per_label": per_label,
        "per_kind": per_kind,
        "fused_confusions": dict(confusion.most_common()),
        "prosody_helped": [o.line.id for o in outcomes if o.fused == o.line.label != o.text],
        "prosody_hurt": [o.line.id for o in outcomes if o.text == o.line.label != o.fused],
    }


def run_mood_bench(*, bus: bool = True) -> dict[str, Any]:
    result = summarize(evaluate())
    if bus:
        from twincast_bench.mood_bus import run_bus_latency

        result["bus"] = run_bus_latency()
    return result
