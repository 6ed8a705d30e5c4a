from __future__ import annotations

import asyncio

import pytest

from twincast_stt.engine import Transcript
from twincast_stt.streaming import Scheduler
from twincast_stt.turns import Signal, TurnSettings, TurnTracker, sounds_unfinished


def run(tracker: TurnTracker, probs: list[float]) -> list[tuple[Signal, int]]:
    return [(sig.kind, sig.at_window) for p in probs for sig in tracker.feed(p)]


def test_onset_needs_two_speech_windows_and_is_dated_to_the_first() -> None:
    tracker = TurnTracker(TurnSettings())
    assert run(tracker, [0.1, 0.9, 0.2, 0.1]) == []
    assert run(tracker, [0.8, 0.9]) == [(Signal.STARTED, 4)]


def test_silence_then_end_after_the_window() -> None:
    tracker = TurnTracker(
        TurnSettings(silence_ms=320, partial_every_ms=1000, first_partial_ms=1000)
    )
    signals = run(tracker, [0.9] * 5 + [0.1] * 12)
    assert signals[0] == (Signal.STARTED, 0)
    assert signals[1] == (Signal.SILENCE, 5)
    # 320 ms is 10 windows of 32 ms: due at the 10th quiet window, and on each after it.
    assert signals[2] == (Signal.END_DUE, 14)


def test_speech_coming_back_cancels_the_end() -> None:
    tracker = TurnTracker(TurnSettings(partial_every_ms=1000, first_partial_ms=1000))
    signals = run(tracker, [0.9] * 5 + [0.1] * 4 + [0.9] * 3 + [0.1] * 3)
    kinds = [k for k, _ in signals]
    assert kinds == [Signal.STARTED, Signal.SILENCE, Signal.RESUMED, Signal.SILENCE]


def test_partials_are_due_every_300_ms_of_speech() -> None:
    tracker = TurnTracker(TurnSettings(partial_every_ms=320, first_partial_ms=320))
    signals = run(tracker, [0.9] * 32)
    partials = [w for k, w in signals if k is Signal.PARTIAL_DUE]
    assert partials == [11, 21, 31]


def test_a_longer_hold_delays_the_end() -> None:
    tracker = TurnTracker(TurnSettings(silence_ms=320, hesitation_ms=800))
    run(tracker, [0.9] * 5)
    tracker.hold_ms = 800
    signals = run(tracker, [0.1] * 26)
    ends = [w for k, w in signals if k is Signal.END_DUE]
    assert ends[0] == 5 + 25 - 1


@pytest.mark.parametrize(
    ("text", "unfinished"),
    [
        ("And you always want to see it in the", True),
        ("I went to the shop and", True),
        ("Well, um", True),
        ("I think so,", True),
        ("He turned sharply and faced Gregson across the table.", False),
        ("What did you find on the rooftops?", False),
        ("", False),
    ],
)
def test_unfinished_sentences(text: str, unfinished: bool) -> None:
    assert sounds_unfinished(text) is unfinished


class SlowEngine:
    def __init__(self) -> None:
        self.order: list[str] = []

    def transcribe(self, pcm: bytes, *, pad_s: float | None = None) -> Transcript:
        self.order.append(pcm.decode())
        return Transcript(text=pcm.decode(), audio_ms=0, compute_ms=0, context_s=0)


async def test_finals_go_first_and_a_newer_partial_replaces_an_older_one() -> None:
    engine = SlowEngine()
    scheduler = Scheduler(engine)  # type: ignore[arg-type]
    old = scheduler.submit("a", b"a-partial-1", pad_s=1, final=False)
    new = scheduler.submit("a", b"a-partial-2", pad_s=1, final=False)
    other = scheduler.submit("b", b"b-partial", pad_s=1, final=False)
    final = scheduler.submit("c", b"c-final", pad_s=1, final=True)
    scheduler.start()
    try:
        results = await asyncio.wait_for(asyncio.gather(old, new, other, final), timeout=5)
    finally:
        await scheduler.close()
    assert results[0] is None
    assert engine.order == ["c-final", "a-partial-2", "b-partial"]
