"""Lip sync as a guest's receiver presents it: how far the received face's mouth is from the
phonemes of the received voice.

The reference is tts's own alignment. Each reply chunk's viseme track is timed in samples of
the audio it was synthesized with (Piper's phoneme durations made that audio). Once a chunk
is found in the received audio, every phoneme has a presentation time. The mouth opening the
received video shows is then compared with the opening those phonemes ask for
(`VISEME_SHAPES`); the lag that lines the two up best is the reply's skew. Presentation times
come from each stream's RTP timestamps and RTCP Sender Reports (`SenderClock`), as a browser
syncs them. A frame stands for the middle of its time on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from twincast_gateway.avatar.animator import COARTICULATION_S, VISEME_SHAPES
from twincast_shared.contract import PcmChunk, VisemeTrack
from twincast_testkit.rtc_client import Received, loudness_ms, shown_mouth

BLOCK_S = 0.001
MAX_LAG_MS = 200
MIN_PLACEMENT = 0.8  # correlation of a chunk's loudness with the received loudness
MIN_LIPSYNC_CORRELATION = 0.5
MIN_FRAMES = 25
MIN_PLACED_MS = 20
FIRST_SEARCH_S = 0.5  # around the first reply audio that arrived
NEXT_SEARCH_S = 0.3  # around the end of the chunk before
# The phonemes' openings are blended over a triangle this wide, as the animator blends them.
BLEND_OFFSETS_S = np.linspace(-COARTICULATION_S, COARTICULATION_S, 25)
_TRIANGLE = 1 - np.abs(BLEND_OFFSETS_S) / COARTICULATION_S
BLEND_WEIGHTS = _TRIANGLE / _TRIANGLE.sum()


@dataclass(frozen=True, slots=True)
class SpokenChunk:
    """One chunk of a reply as tts made it: its loudness per ms and its phonemes' shapes."""

    loudness: np.ndarray
    duration_s: float
    shapes: tuple[tuple[float, float, float], ...]  # (start s, end s, mouth opening)

    @classmethod
    def of(cls, chunk: PcmChunk, track: VisemeTrack | None) -> SpokenChunk:
        samples = np.frombuffer(chunk.pcm, dtype="<i2").reshape(-1, chunk.channels)
        rate = chunk.sample_rate
        shapes: tuple[tuple[float, float, float], ...] = ()
        if track is not None:
            shapes = tuple(
                (v.start / track.sample_rate, v.end / track.sample_rate, _opening(v.viseme))
                for v in track.visemes
            )
        return cls(
            loudness=loudness_ms(samples.mean(axis=1), rate),
            duration_s=len(samples) / rate,
            shapes=shapes,
        )


@dataclass(frozen=True, slots=True)
class LipSync:
    """One answer's skew. `lag_ms` is None when no lag within +-`MAX_LAG_MS` lines the mouth
    up with the voice (out of sync by more, or the mouth does not follow the phonemes)."""

    lag_ms: float | None  # positive: the mouth shows a phoneme after it is heard
    correlation: float
    frames: int
    chunks: int


def _opening(viseme: str) -> float:
    shape = VISEME_SHAPES.get(viseme)
    return shape.open if shape is not None else 0.25


def _presented_audio(received: Received) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(presentation time, loudness, arrival) on a 1 ms grid of presentation time; what was
    never received (a lost packet) is silence that arrived with what came before it."""
    clock = received.audio_clock
    times, loud, arrivals = [], [], []
    for (arrival, pts, _), blocks in zip(received.audio_pts, received.loudness, strict=True):
        at = clock.sender_time(pts)
        if at is None:
            continue
        times.append(at + (np.arange(len(blocks)) + 0.5) * BLOCK_S)
        loud.append(blocks)
        arrivals.append(np.full(len(blocks), arrival))
    if not times:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    t, x, a = np.concatenate(times), np.concatenate(loud), np.concatenate(arrivals)
    slot = np.round((t - t.min()) / BLOCK_S).astype(np.int64)
    grid = t.min() + np.arange(int(slot.max()) + 1) * BLOCK_S
    heard = np.zeros(len(grid))
    came = np.full(len(grid), -np.inf)
    heard[slot], came[slot] = x, a
    return grid, heard, np.maximum.accumulate(came)


def _best_fit(heard: np.ndarray, wanted: np.ndarray, lo: int, hi: int) -> tuple[int, float]:
    """The start in [lo, hi] where `heard` correlates best with `wanted`, and how well."""
    n = len(wanted)
    lo, hi = max(0, lo), min(hi, len(heard) - n)
    if n < 2 or hi < lo:
        return lo, -1.0
    windows = sliding_window_view(heard[lo : hi + n], n)
    centred = windows - windows.mean(axis=1, keepdims=True)
    spread = np.sqrt((centred**2).mean(axis=1)) * (wanted.std() or 1.0)
    scores = centred @ (wanted - wanted.mean()) / n / np.maximum(spread, 1e-9)
    best = int(np.argmax(scores))
    return lo + best, float(scores[best])


def place(
    received: Received, chunks: Sequence[SpokenChunk], *, heard_from: float
) -> list[float] | None:
    """When the chunks started to play, in presentation time, up to the first one not found
    (a reply cut short, or paused and resumed); None if the first is not found.

    The first is looked for around `heard_from` (arrival time of the reply's first sound);
    each next one around where the one before it ends, as the gateway queues them.
    """
    times, loud, arrivals = _presented_audio(received)
    if not len(times):
        return None
    starts: list[float] = []
    expected: float | None = None  # where the chunk before ends
    for chunk in chunks:
        if expected is None:
            lo = int(np.searchsorted(arrivals, heard_from - FIRST_SEARCH_S))
            hi = int(np.searchsorted(arrivals, heard_from + FIRST_SEARCH_S))
        else:
            centre, radius = int(np.searchsorted(times, expected)), int(NEXT_SEARCH_S / BLOCK_S)
            lo, hi = centre - radius, centre + radius
        if len(chunk.loudness) >= MIN_PLACED_MS:
            at, score = _best_fit(loud, chunk.loudness, lo, hi)
            if score < MIN_PLACEMENT:
                break
            starts.append(float(times[at]) - BLOCK_S / 2)
        elif expected is not None:  # too short to find: it follows the one before
            starts.append(expected)
        else:
            break
        expected = starts[-1] + chunk.duration_s
    return starts or None


class _Openings:
    """The mouth openings a reply's phonemes ask for, on the presentation (or chunk) clock,
    blended as the animator blends them."""

    def __init__(self, spans: Sequence[tuple[float, float, float]]) -> None:
        ordered = sorted(spans)
        self._begins = np.array([b for b, _, _ in ordered])
        self._ends = np.array([e for _, e, _ in ordered])
        self._openings = np.array([o for _, _, o in ordered])

    def __call__(self, at: np.ndarray) -> np.ndarray:
        near = at[:, None] + BLEND_OFFSETS_S[None, :]
        i = np.searchsorted(self._begins, near, side="right") - 1
        i = np.clip(i, 0, len(self._begins) - 1)
        inside = (near >= self._begins[i]) & (near < self._ends[i])
        return np.asarray(np.where(inside, self._openings[i], 0.0) @ BLEND_WEIGHTS)


def _best_lag(
    seen: np.ndarray, at: np.ndarray, wanted: _Openings, max_lag_ms: int
) -> tuple[int | None, float]:
    """The lag (ms) at which `seen` (sampled at `at`) correlates best with `wanted`, and how
    well; None for the lag if the best is at the edge of the search (it may lie beyond)."""
    best_lag, best = 0, -1.0
    for lag in range(-max_lag_ms, max_lag_ms + 1):
        target = wanted(at - lag / 1000)
        if target.std() == 0:
            continue
        score = float(np.corrcoef(seen, target)[0, 1])
        if score > best:
            best_lag, best = lag, score
    if abs(best_lag) == max_lag_ms:
        return None, best
    return best_lag, best


def lip_sync(
    received: Received, chunks: Sequence[SpokenChunk], *, heard_from: float
) -> LipSync | None:
    """The skew of one reply's mouth against its voice; None if the reply cannot be measured
    (not found in the received voice, or fewer than `MIN_FRAMES` frames long)."""
    starts = place(received, chunks, heard_from=heard_from)
    if not starts:
        return None
    chunks = chunks[: len(starts)]
    spans = [
        (start + a, start + b, opening)
        for start, chunk in zip(starts, chunks, strict=True)
        for a, b, opening in chunk.shapes
    ]
    shown, mouth = shown_mouth(received)
    inside = (shown >= starts[0]) & (shown <= starts[-1] + chunks[-1].duration_s)
    shown, mouth = shown[inside], mouth[inside]
    if not spans or len(shown) < MIN_FRAMES:
        return None
    lag, fit = _best_lag(mouth, shown, _Openings(spans), MAX_LAG_MS) if mouth.std() else (None, 0)
    return LipSync(
        lag_ms=None if lag is None or fit < MIN_LIPSYNC_CORRELATION else float(lag),
        correlation=round(fit, 3),
        frames=len(shown),
        chunks=len(chunks),
    )


def track_lag_ms(chunks: Sequence[SpokenChunk], *, max_lag_ms: int = 100) -> float | None:
    """How far a reply's viseme track trails the loudness of its own audio (ms), as tts made
    them, before any network: the openings it asks for against the voice's loudness."""
    spans, loudness, at = [], [], 0.0
    for chunk in chunks:
        spans += [(at + a, at + b, opening) for a, b, opening in chunk.shapes]
        loudness.append(chunk.loudness)
        at += chunk.duration_s
    voice = np.concatenate(loudness) if loudness else np.zeros(0)
    if not spans or len(voice) < 2 * max_lag_ms or voice.std() == 0:
        return None
    times = (np.arange(len(voice)) + 0.5) * BLOCK_S
    # The track trails the voice by `lag` when the voice now matches the track `lag` later.
    lag, _ = _best_lag(voice, times, _Openings(spans), max_lag_ms)
    return None if lag is None else -float(lag)
