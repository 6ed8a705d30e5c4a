from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from twincast_stt.engine import Transcript
from twincast_stt.streaming import Scheduler
from twincast_stt.turns import PartialPacer, Signal, TurnSettings, TurnTracker, sounds_unfinished


def run(tracker: TurnTracker, probs: list[float]) -> list[tuple[Signal, int]]:
    return [(sig.kind, sig.at_window) for p in probs for sig in tracker.feed(p)]


def test_onset_needs_two_speech_windows_and_is_dated_to_the_first() -> None:
    tracker = TurnTracker(TurnSettings())
    assert run(tracker, [0.1, 0.9, 0.2, 0.1]) == []
    assert run(tracker, [0.8, 0.9]) == [(Signal.STARTED, 4)]


def test_silence_then_end_after_the_window() -> None:
    tracker = TurnTracker(TurnSettings(silence_ms=320))
    signals = run(tracker, [0.9] * 5 + [0.1] * 12)
    assert signals[0] == (Signal.STARTED, 0)
    assert signals[1] == (Signal.SILENCE, 5)
    # 320 ms is 10 windows of 32 ms: due at the 10th quiet window, and on each after it.
    assert signals[2] == (Signal.END_DUE, 14)


def test_speech_coming_back_cancels_the_end() -> None:
    tracker = TurnTracker(TurnSettings())
    signals = run(tracker, [0.9] * 5 + [0.1] * 4 + [0.9] * 3 + [0.1] * 3)
    kinds = [k for k, _ in signals]
    assert kinds == [Signal.STARTED, Signal.SILENCE, Signal.RESUMED, Signal.SILENCE]


def test_the_first_partial_starts_after_enough_speech_to_hold_a_word() -> None:
    pacer = PartialPacer(every_s=0.25, min_speech_s=0.2, first_guess_s=0.15)
    pacer.restart(onset=0.0)
    assert not pacer.due(0.1)  # it would be out in time, but there is no word to hear yet
    assert not pacer.due(0.19)
    assert pacer.due(0.2)


def test_partials_start_early_by_as_long_as_recent_ones_took() -> None:
    pacer = PartialPacer(every_s=0.25, min_speech_s=0.0, headroom=1.0, first_guess_s=0.05)
    pacer.restart(onset=0.0)
    assert [t for t in (0.1, 0.19, 0.2) if pacer.due(t)] == [0.2]  # out at 0.25
    token = pacer.started(0.2)
    assert not pacer.due(0.3), "one at a time"
    pacer.finished(token, 0.32, published=True)  # took 120 ms
    # Next out by 0.57: start by 0.45, judged by the slowest recent one.
    assert not pacer.due(0.44)
    assert pacer.due(0.45)


def test_a_partial_with_no_words_does_not_reset_the_deadline() -> None:
    pacer = PartialPacer(every_s=0.25, min_speech_s=0.0, first_guess_s=0.1)
    pacer.restart(onset=0.0)
    token = pacer.started(0.15)
    pacer.finished(token, 0.25, published=False)
    assert pacer.due(0.26), "late already: go again at once"


def test_an_end_of_turn_transcription_does_not_set_the_pace() -> None:
    pacer = PartialPacer(every_s=0.25, min_speech_s=0.0, headroom=1.0, first_guess_s=0.1)
    pacer.restart(onset=0.0)
    token = pacer.started(1.0)
    pacer.finished(token, 1.4, published=True, typical=False)  # a 400 ms final
    assert not pacer.due(1.54)
    assert pacer.due(1.55)


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

    def transcribe(
        self,
        pcm: bytes,
        *,
        pad_s: float | None = None,
        abandon: Callable[[], bool] | None = None,
    ) -> Transcript | None:
        if abandon is not None and abandon():
            self.order.append(f"abandoned {pcm.decode()}")
            return None
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


async def test_a_job_not_yet_started_can_be_withdrawn() -> None:
    engine = SlowEngine()
    scheduler = Scheduler(engine)  # type: ignore[arg-type]
    stale = scheduler.submit("a", b"a-final", pad_s=1, final=True)
    kept = scheduler.submit("b", b"b-final", pad_s=1, final=True)
    assert scheduler.withdraw(stale)
    scheduler.start()
    try:
        await asyncio.wait_for(kept, timeout=5)
    finally:
        await scheduler.close()
    assert stale.cancelled()
    assert engine.order == ["b-final"]
    assert not scheduler.withdraw(kept)


class GatedEngine:
    """Holds the partial "in the encoder" until the test lets it go on."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.encoding = threading.Event()
        self.go_on = threading.Event()

    def transcribe(
        self,
        pcm: bytes,
        *,
        pad_s: float | None = None,
        abandon: Callable[[], bool] | None = None,
    ) -> Transcript | None:
        text = pcm.decode()
        if text.endswith("partial"):
            self.encoding.set()
            self.go_on.wait(5)
            if abandon is not None and abandon():
                self.order.append(f"{text} given up")
                return None
        self.order.append(text)
        return Transcript(text=text, audio_ms=0, compute_ms=0, context_s=0)


async def test_a_partial_gives_way_to_an_end_of_turn_job_that_comes_in() -> None:
    engine = GatedEngine()
    scheduler = Scheduler(engine)  # type: ignore[arg-type]
    scheduler.start()
    try:
        partial = scheduler.submit("a", b"a-partial", pad_s=1, final=False)
        await asyncio.to_thread(engine.encoding.wait, 5)
        final = scheduler.submit("b", b"b-final", pad_s=1, final=True)
        engine.go_on.set()
        assert await asyncio.wait_for(partial, timeout=5) is None
        assert await asyncio.wait_for(final, timeout=5) is not None
        # With no final waiting, a partial runs to its end.
        engine.encoding.clear()
        assert await asyncio.wait_for(
            scheduler.submit("a", b"a-next-partial", pad_s=1, final=False), timeout=5
        )
    finally:
        await scheduler.close()
    assert engine.order == ["a-partial given up", "b-final", "a-next-partial"]
