"""Voice prosody from 16 kHz PCM: pitch, loudness, speaking rate, each against the speaker's own
baseline. numpy only; no bus here.

Per 20 ms frame (40 ms window): loudness in dBFS, and pitch by normalized autocorrelation
(the smallest lag whose peak is nearly the best, which avoids octave-down errors), voiced when
that peak is clear. Speech is what stands 10 dB over a tracked noise floor. A *segment* is a
stretch of speech that ends at 300 ms of quiet (or the end of the stream, or every 3 s of
ongoing speech); each gives a `ProsodyReading`: median pitch and its spread in semitones,
loudness, syllable rate (peaks of the loudness envelope on voiced frames, per second of
speech), the pitch slope at the end (a rise for questions).

Absolute values say little about a mood — a deep voice is not a sad one, a close microphone is
not an angry guest — so `SpeakerBaseline` keeps the session's running mean and spread of each
feature (starting from population priors) and readings are scored as z-scores against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from twincast_mood.labels import LABELS, PLACE, Distribution, normalized

SAMPLE_RATE: Final = 16_000
HOP: Final = 320  # 20 ms
WINDOW: Final = 640  # 40 ms
HOP_S: Final = HOP / SAMPLE_RATE
F0_MIN: Final = 70.0
F0_MAX: Final = 400.0
_MIN_LAG: Final = int(SAMPLE_RATE / F0_MAX)
_MAX_LAG: Final = int(SAMPLE_RATE / F0_MIN) + 1
_NFFT: Final = 1024
VOICING: Final = 0.5
SPEECH_OVER_FLOOR_DB: Final = 10.0
GAP_FRAMES: Final = 15  # 300 ms of quiet ends a segment
MIN_SEGMENT_FRAMES: Final = 20  # 400 ms of speech makes a reading
INTERIM_FRAMES: Final = 150  # a reading every 3 s of ongoing speech
MAX_SEGMENT_FRAMES: Final = 400
KEPT_FRAMES: Final = MAX_SEGMENT_FRAMES + GAP_FRAMES  # all a reading looks at

Floats = npt.NDArray[np.float64]


def analyse(samples: npt.NDArray[np.float64]) -> tuple[Floats, Floats, Floats]:
    """Per whole 20 ms hop (40 ms window): loudness (dBFS), pitch (Hz or NaN), and the
    loudness of its two 10 ms halves with the low end cut (the envelope syllables are
    counted on)."""
    count = (len(samples) - WINDOW) // HOP + 1
    if count <= 0:
        return np.zeros(0), np.zeros(0), np.zeros((0, 2))
    frames = np.lib.stride_tricks.sliding_window_view(samples, WINDOW)[::HOP][:count]
    centred = frames - frames.mean(axis=1, keepdims=True)
    middle = frames[:, HOP // 2 : HOP // 2 + HOP]
    db = 20 * np.log10(np.maximum(np.sqrt(np.mean(middle**2, axis=1)), 1e-5))
    emphasized = middle[:, 1:] - 0.9 * middle[:, :-1]
    halves = emphasized[:, : 2 * (HOP // 2 - 1)].reshape(count, 2, -1)
    envelope = 20 * np.log10(np.maximum(np.sqrt(np.mean(halves**2, axis=2)), 1e-5))
    spectrum = np.fft.rfft(centred, _NFFT, axis=1)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), _NFFT, axis=1)[:, : _MAX_LAG + 2]
    squares = np.cumsum(centred**2, axis=1)
    lags = np.arange(_MAX_LAG + 2)
    head = squares[:, WINDOW - 1 - lags]  # energy of x[0 : W - lag]
    tail = squares[:, -1:] - np.concatenate(
        [np.zeros((count, 1)), squares[:, lags[1:] - 1]], axis=1
    )  # energy of x[lag : W]
    nac = acf / np.sqrt(np.maximum(head * tail, 1e-12))
    f0 = np.full(count, np.nan)
    band = nac[:, _MIN_LAG : _MAX_LAG + 1]
    best = band.max(axis=1)
    for i in np.flatnonzero(best >= VOICING):
        row = band[i]
        # Local maxima close to the best; the shortest lag among them is the period.
        peaks = np.flatnonzero((row[1:-1] >= row[:-2]) & (row[1:-1] >= row[2:])) + 1
        good = peaks[row[peaks] >= 0.88 * best[i]]
        if not len(good):
            continue
        k = int(good[0])
        a, b, c = row[k - 1], row[k], row[k + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
        lag = _MIN_LAG + k + float(np.clip(shift, -0.5, 0.5))
        f0[i] = SAMPLE_RATE / lag
    return db, f0, envelope


@dataclass(frozen=True, slots=True)
class ProsodyReading:
    """One stretch of speech, summarized."""

    speech_s: float
    f0_st: float  # median pitch, semitones above 100 Hz
    f0_spread_st: float
    loudness_db: float
    rate_syl_s: float
    end_slope_st_s: float
    voiced_share: float
    final: bool  # the segment ended (rather than an interim reading of ongoing speech)

    def features(self) -> dict[str, float]:
        return {
            "f0": self.f0_st,
            "spread": self.f0_spread_st,
            "loudness": self.loudness_db,
            "rate": self.rate_syl_s,
        }


def summarize(
    db: Floats,
    f0: Floats,
    envelope: Floats,
    speech: npt.NDArray[np.bool_],
    *,
    final: bool,
) -> ProsodyReading | None:
    """A reading of one segment's frames, or None if it holds too little voiced speech."""
    voiced = speech & ~np.isnan(f0)
    if int(speech.sum()) < MIN_SEGMENT_FRAMES or int(voiced.sum()) < 8:
        return None
    # Pitch on weak frames, or far from the segment's median (octave errors), is dropped.
    with np.errstate(invalid="ignore"):
        st_all = 12 * np.log2(f0 / 100.0)
    centre = float(np.median(st_all[voiced]))
    voiced &= (db > float(db[speech].max()) - 30) & (np.abs(st_all - centre) < 9)
    if int(voiced.sum()) < 8:
        return None
    semitones = st_all[voiced]
    spread = float(np.percentile(semitones, 90) - np.percentile(semitones, 10)) / 2.56
    loud = np.sort(db[speech])[-max(1, int(speech.sum()) // 2) :]
    speech_s = float(speech.sum()) * HOP_S
    return ProsodyReading(
        speech_s=speech_s,
        f0_st=float(np.median(semitones)),
        f0_spread_st=spread,
        loudness_db=float(loud.mean()),
        rate_syl_s=syllable_nuclei(envelope.reshape(-1), np.repeat(voiced, 2)) / speech_s,
        end_slope_st_s=_end_slope(f0, voiced),
        voiced_share=float(voiced.sum() / speech.sum()),
        final=final,
    )


def syllable_nuclei(envelope: Floats, voiced: npt.NDArray[np.bool_]) -> int:
    """Peaks of the 10 ms loudness envelope on voiced frames, each 2 dB over the dip
    before it and at least 70 ms after the last (de Jong & Wempe's method, simplified)."""
    if len(envelope) < 3:
        return 0
    smooth = np.convolve(envelope, np.array([0.1, 0.2, 0.4, 0.2, 0.1]), mode="same")
    floor = float(np.median(smooth[voiced])) - 12 if voiced.any() else -60.0
    count, dip, last_peak = 0, math.inf, -10
    for i in range(1, len(smooth) - 1):
        value = smooth[i]
        dip = min(dip, value)
        is_peak = value >= smooth[i - 1] and value > smooth[i + 1]
        if not is_peak or not voiced[i] or value < floor:
            continue
        if value - dip >= 2.0 and i - last_peak >= 7:
            count += 1
            last_peak = i
            dip = value
    return count


def _end_slope(f0: Floats, voiced: npt.NDArray[np.bool_]) -> float:
    where = np.flatnonzero(voiced)
    if len(where) < 6:
        return 0.0
    tail = where[where >= where[-1] - 25]  # the last 0.5 s of voicing
    if len(tail) < 6:
        return 0.0
    st = 12 * np.log2(f0[tail] / 100.0)
    slope = np.polyfit(tail * HOP_S, st, 1)[0]
    return float(np.clip(slope, -40, 40))


class ProsodyTracker:
    """One guest's audio stream → readings, as the frames arrive."""

    def __init__(self) -> None:
        self._pending = np.zeros(0)
        self._floor: float | None = None
        self._db: list[float] = []
        self._f0: list[float] = []
        self._env: list[tuple[float, float]] = []
        self._speech: list[bool] = []
        self._gap = 0
        self._since_reading = 0
        self.frames_seen = 0

    def feed(self, pcm: bytes, *, last: bool = False) -> list[ProsodyReading]:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
        self._pending = np.concatenate([self._pending, samples])
        db, f0, envelope = analyse(self._pending)
        if len(db):
            self._pending = self._pending[len(db) * HOP :]
        readings = []
        for level, pitch, halves in zip(db.tolist(), f0.tolist(), envelope.tolist(), strict=True):
            reading = self._frame(level, pitch, (halves[0], halves[1]))
            if reading is not None:
                readings.append(reading)
        if last:
            reading = self._close()
            if reading is not None:
                readings.append(reading)
            self._pending = np.zeros(0)
        return readings

    def _frame(self, db: float, f0: float, halves: tuple[float, float]) -> ProsodyReading | None:
        self.frames_seen += 1
        # The floor falls fast to quiet frames and rises 1 dB/s through long speech.
        if self._floor is None:
            self._floor = min(-30.0, db)
        elif db < self._floor:
            self._floor = max(-90.0, 0.7 * self._floor + 0.3 * db)
        else:
            self._floor = min(-30.0, self._floor + 0.02)
        over = db - self._floor
        voiced = not math.isnan(f0)
        speech = db > -60.0 and (over > SPEECH_OVER_FLOOR_DB or (voiced and over > 5.0))
        if not self._speech and not speech:
            return None
        self._db.append(db)
        self._f0.append(f0)
        self._env.append(halves)
        self._speech.append(speech)
        if len(self._speech) > 2 * KEPT_FRAMES:  # endless "speech", e.g. steady loud noise
            for frames in (self._db, self._f0, self._env, self._speech):
                del frames[:-KEPT_FRAMES]
        if speech:
            self._gap = 0
            self._since_reading += 1
            if self._since_reading >= INTERIM_FRAMES:
                self._since_reading = 0
                return self._reading(final=False)
            return None
        self._gap += 1
        if self._gap >= GAP_FRAMES:
            return self._close()
        return None

    def _reading(self, *, final: bool) -> ProsodyReading | None:
        end = len(self._speech) - (self._gap if final else 0)
        start = max(0, end - MAX_SEGMENT_FRAMES)
        return summarize(
            np.array(self._db[start:end]),
            np.array(self._f0[start:end]),
            np.array(self._env[start:end]),
            np.array(self._speech[start:end], dtype=bool),
            final=final,
        )

    def _close(self) -> ProsodyReading | None:
        reading = self._reading(final=True) if self._speech else None
        self._db.clear()
        self._f0.clear()
        self._env.clear()
        self._speech.clear()
        self._gap = 0
        self._since_reading = 0
        return reading


@dataclass(frozen=True, slots=True)
class Prior:
    """A feature across speakers (`mean`, `between`) and within one speaker (`within`)."""

    mean: float
    between: float
    within: float


# Adult speakers, conversational speech, a headset-like level; per reading of 1-3 s.
PRIORS: Final[Mapping[str, Prior]] = MappingProxyType(
    {
        "f0": Prior(mean=8.0, between=5.0, within=1.5),  # ~160 Hz; men ~110, women ~210
        "spread": Prior(mean=2.2, between=0.8, within=0.6),
        "loudness": Prior(mean=-24.0, between=6.0, within=3.0),
        "rate": Prior(mean=4.5, between=0.8, within=0.7),
    }
)
MEAN_PRIOR_S: Final = 0.3  # seconds of the speaker's own speech worth as much as the prior
SPREAD_PRIOR_S: Final = 4.0


@dataclass
class _Running:
    prior: Prior
    weight: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    def stats(self) -> tuple[float, float]:
        """The speaker's expected value and how far a reading may stray from it: their own
        spread, widened by how unsure their mean still is (posterior predictive)."""
        p, w = self.prior, self.weight
        mean = (MEAN_PRIOR_S * p.mean + w * self.mean) / (MEAN_PRIOR_S + w)
        unsure = p.between**2 * MEAN_PRIOR_S / (MEAN_PRIOR_S + w)
        within = (SPREAD_PRIOR_S * p.within**2 + self.m2) / (SPREAD_PRIOR_S + w)
        return mean, math.sqrt(within + unsure)

    def add(self, value: float, weight: float) -> None:
        if weight <= 0:
            return
        self.weight += weight
        delta = value - self.mean
        self.mean += delta * weight / self.weight
        self.m2 += weight * delta * (value - self.mean)


@dataclass
class SpeakerBaseline:
    """The session speaker's own running mean and spread of each feature."""

    features: dict[str, _Running] = field(
        default_factory=lambda: {name: _Running(prior) for name, prior in PRIORS.items()}
    )

    @property
    def speech_s(self) -> float:
        return self.features["f0"].weight

    def z(self, reading: ProsodyReading) -> dict[str, float]:
        out = {}
        for name, value in reading.features().items():
            mean, sd = self.features[name].stats()
            out[name] = float(np.clip((value - mean) / sd, -4, 4))
        return out

    def add(self, reading: ProsodyReading, z: Mapping[str, float]) -> None:
        """Learns from a reading; one far from the baseline teaches it less (an outburst is not
        the speaker's normal voice)."""
        far = max(abs(v) for v in z.values()) if z else 0.0
        weight = reading.speech_s / (1.0 + far**2 / 4.0)
        for name, value in reading.features().items():
            self.features[name].add(value, weight)


# Where each label's voice sits, in z-scores against the speaker's own baseline: pitch level,
# pitch spread, loudness, syllable rate, end-of-phrase rise (st/s over 8). After the vocal cue
# profiles summarized by Juslin & Laukka (2003) for joy, anger, fear, sadness and tenderness.
TEMPLATES: Final[Mapping[str, tuple[float, float, float, float, float]]] = MappingProxyType(
    {
        "calm": (-0.3, -0.3, -0.6, -0.4, 0.0),
        "happy": (1.0, 1.0, 0.6, 0.4, 0.0),
        "curious": (0.3, 0.4, 0.0, 0.0, 1.3),
        "frustrated": (0.6, 0.4, 1.5, 0.7, -0.3),
        "anxious": (1.0, -0.3, -0.2, 1.2, 0.0),
        "sad": (-0.8, -0.8, -1.2, -1.0, -0.3),
    }
)


# How far each z-score is trusted: syllable rate and the end-of-phrase rise are noisy measures
# (on the same neutral voice they stray by up to 2 z), pitch and loudness much less so.
FEATURE_TRUST: Final = np.array([1.0, 0.8, 1.0, 0.4, 0.4])


@dataclass(frozen=True, slots=True)
class VoiceMood:
    dist: Distribution
    confidence: float
    valence: float
    arousal: float
    fast: bool
    z: dict[str, float]


def voice_mood(reading: ProsodyReading, z: Mapping[str, float], baseline_s: float) -> VoiceMood:
    """What the voice says, given the reading's z-scores against the speaker's baseline."""
    rise = float(np.clip(reading.end_slope_st_s / 8.0, -3, 3))
    point = np.array([z["f0"], z["spread"], z["loudness"], z["rate"], rise])
    scores = {}
    for label in LABELS:
        distance = float(np.sum(FEATURE_TRUST * (point - np.array(TEMPLATES[label])) ** 2))
        scores[label] = math.exp(-distance / 2.0)
    dist = normalized(scores)
    # A voice like the speaker's usual one says nothing; so does a baseline built on little.
    deviation = float(np.sqrt(np.sum(FEATURE_TRUST * point**2)))
    maturity = baseline_s / (baseline_s + 2.0)
    amount = min(1.0, reading.speech_s / 1.2)
    confidence = float(np.clip(0.3 * (deviation - 1.0), 0.0, 0.8)) * maturity * amount
    arousal = math.tanh(0.5 * z["loudness"] + 0.4 * z["rate"] + 0.3 * z["f0"] + 0.2 * z["spread"])
    valence = sum(dist[label] * PLACE[label][0] for label in LABELS)
    return VoiceMood(
        dist=dist,
        confidence=confidence,
        valence=valence,
        arousal=arousal,
        fast=z["rate"] > 2.5,  # rate strays by up to 2 z on one steady voice
        z={**{k: round(v, 2) for k, v in z.items()}, "rise": round(rise, 2)},
    )
