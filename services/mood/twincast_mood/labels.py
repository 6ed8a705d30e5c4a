"""The guest mood labels and where each sits in valence/arousal."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

LABELS: Final = ("calm", "happy", "curious", "frustrated", "anxious", "sad")

# (valence, arousal) of each label, after the circumplex model of affect.
PLACE: Final[Mapping[str, tuple[float, float]]] = MappingProxyType(
    {
        "calm": (0.2, -0.4),
        "happy": (0.7, 0.4),
        "curious": (0.3, 0.2),
        "frustrated": (-0.6, 0.6),
        "anxious": (-0.4, 0.4),
        "sad": (-0.6, -0.5),
    }
)

Distribution = Mapping[str, float]


def normalized(scores: Mapping[str, float]) -> dict[str, float]:
    total = sum(max(0.0, scores.get(label, 0.0)) for label in LABELS)
    if total <= 0:
        return {label: 1.0 / len(LABELS) for label in LABELS}
    return {label: max(0.0, scores.get(label, 0.0)) / total for label in LABELS}


def top(dist: Distribution) -> tuple[str, float]:
    label = max(LABELS, key=lambda name: dist.get(name, 0.0))
    return label, dist.get(label, 0.0)
