"""Text and voice evidence over a sliding window → one mood, published only when it changes.

Each piece of evidence (a transcript's words, a stretch of voice) is a distribution over the
labels with a confidence. The estimate is their sum weighted by confidence and by age (half
weight after `half_life_s`, gone after `window_s`); a partial transcript counts half and is
replaced by the next partial or the final of the same utterance. The label shown changes only
when another label beats it by `margin` (hysteresis), and an estimate is worth publishing only
when its label, valence, arousal or hurry changed meaningfully.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from twincast_mood.labels import LABELS, PLACE, Distribution, top

Source = Literal["text", "voice"]
# With no evidence the guest reads as calm, and we are not sure of it.
PRIOR_LABEL: Final = "calm"
PRIOR_WEIGHT: Final = 0.08


@dataclass(frozen=True, slots=True)
class Evidence:
    key: str  # evidence with the same key replaces the older (partial → final)
    source: Source
    at: float
    dist: Distribution
    confidence: float
    valence: float
    arousal: float
    hurried: bool = False
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Estimate:
    label: str
    confidence: float
    valence: float
    arousal: float
    hurried: bool
    basis: tuple[Source, ...]
    dist: Mapping[str, float] = field(default_factory=dict)

    @property
    def energy(self) -> float:
        return (self.arousal + 1.0) / 2.0


class MoodFusion:
    def __init__(
        self,
        *,
        window_s: float = 45.0,
        half_life_s: float = 15.0,
        margin: float = 0.12,
        hold_confidence: float = 0.3,
        voice_weight: float = 1.0,
    ) -> None:
        self._window_s = window_s
        self._half_life_s = half_life_s
        self._margin = margin
        self._hold_confidence = hold_confidence
        self._voice_weight = voice_weight
        self._evidence: dict[str, Evidence] = {}
        self._label: str | None = None

    def add(self, evidence: Evidence) -> None:
        self._evidence[evidence.key] = evidence

    def estimate(self, now: float) -> Estimate:
        for key in [k for k, e in self._evidence.items() if now - e.at > self._window_s]:
            del self._evidence[key]
        mass = {label: 0.0 for label in LABELS}
        mass[PRIOR_LABEL] += PRIOR_WEIGHT
        total = PRIOR_WEIGHT
        valence = PRIOR_WEIGHT * PLACE[PRIOR_LABEL][0]
        arousal = PRIOR_WEIGHT * PLACE[PRIOR_LABEL][1]
        basis: set[Source] = set()
        hurried = 0.0
        for e in self._evidence.values():
            age = max(0.0, now - e.at)
            w = e.confidence * e.weight * 0.5 ** (age / self._half_life_s)
            if e.source == "voice":
                w *= self._voice_weight
            if w <= 1e-6:
                continue
            basis.add(e.source)
            total += w
            for label in LABELS:
                mass[label] += w * e.dist.get(label, 0.0)
            valence += w * e.valence
            arousal += w * e.arousal
            hurried = max(hurried, w if e.hurried else 0.0)
        dist = {label: mass[label] / total for label in LABELS}
        best, p_best = top(dist)
        evidence = total - PRIOR_WEIGHT
        certainty = 1.0 - math.exp(-2.0 * evidence)
        held = self._label
        # A label held with conviction yields only to a clearly better one; a weak one at once.
        if (
            held is None
            or held == best
            or dist[held] * certainty < self._hold_confidence
            or p_best >= dist[held] + self._margin
        ):
            held = best
        self._label = held
        confidence = dist[held] * certainty
        return Estimate(
            label=held,
            confidence=max(0.0, min(1.0, confidence)),
            valence=max(-1.0, min(1.0, valence / total)),
            arousal=max(-1.0, min(1.0, arousal / total)),
            hurried=hurried >= 0.15,
            basis=tuple(sorted(basis)),
            dist=dist,
        )


class ChangeGate:
    """Says which estimates are worth publishing: the first with any evidence, then meaningful
    changes only (label, valence or arousal by `min_delta`, hurry, what it rests on)."""

    def __init__(self, *, min_delta: float = 0.25, min_confidence: float = 0.2) -> None:
        self._min_delta = min_delta
        self._min_confidence = min_confidence
        self.last: Estimate | None = None

    def worth(self, estimate: Estimate) -> bool:
        last = self.last
        if not estimate.basis:
            changed = False  # no evidence yet: nothing to say
        elif last is None:
            changed = True
        elif estimate.label != last.label:
            changed = estimate.confidence >= self._min_confidence
        else:
            changed = (
                abs(estimate.valence - last.valence) >= self._min_delta
                or abs(estimate.arousal - last.arousal) >= self._min_delta
                or estimate.hurried != last.hurried
                or estimate.basis != last.basis
                or abs(estimate.confidence - last.confidence) >= 2 * self._min_delta
            )
        if changed:
            self.last = estimate
        return changed
