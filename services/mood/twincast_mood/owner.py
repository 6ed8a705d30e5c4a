"""The owner's state from their signals (wearable, calendar) → the avatar's energy. No bus here.

Each fresh signal moves energy up or down from a neutral 0.6 (the avatar's resting energy):
a good night's sleep and a recovered heart (high HRV, low resting rate) raise it; a short
night, a packed calendar or an elevated resting rate lower it; a raised current heart rate or
many steps make the owner livelier (arousal). Plausibility is the contract's job
(`SIGNAL_KINDS`); freshness is the store's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

NEUTRAL_ENERGY: Final = 0.6


class Signal(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> float: ...


@dataclass(frozen=True, slots=True)
class OwnerState:
    energy: float
    valence: float
    arousal: float
    label: str
    confidence: float
    kinds: tuple[str, ...]


def _clip(value: float, low: float = -1.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def owner_state(signals: Iterable[Signal]) -> OwnerState:
    """Energy 0..1 for the avatar, with a label: rested, tired, stretched, lively or steady."""
    rest = 0.0  # + rested and recovered, - depleted
    load = 0.0  # how stretched the day is
    lively = 0.0  # current activation
    kinds = []
    for signal in signals:
        kinds.append(signal.kind)
        v = signal.value
        match signal.kind:
            case "sleep_hours":
                rest += _clip((v - 7.0) / 2.0) * 0.8
            case "hrv":
                rest += _clip((v - 45.0) / 30.0) * 0.4
            case "resting_heart_rate":
                rest += _clip((62.0 - v) / 15.0) * 0.3
            case "calendar_load":
                load += _clip((v - 0.5) / 0.4) * 0.6
            case "meetings_today":
                load += _clip((v - 4.0) / 5.0) * 0.4
            case "heart_rate":
                lively += _clip((v - 75.0) / 35.0) * 0.5
            case "steps":
                lively += _clip((v - 5_000.0) / 7_000.0) * 0.3
    if not kinds:
        return OwnerState(NEUTRAL_ENERGY, 0.0, 0.0, "steady", 0.0, ())
    energy = NEUTRAL_ENERGY + 0.3 * _clip(rest) - 0.2 * _clip(load) + 0.15 * _clip(lively)
    energy = _clip(energy, 0.05, 0.95)
    arousal = _clip(0.5 * lively + 0.3 * load + 0.3 * rest)
    valence = _clip(0.5 * rest - 0.3 * load)
    if energy < 0.45:
        label = "tired" if rest < -0.2 or load <= 0.2 else "stretched"
    elif energy > 0.72:
        label = "lively" if lively > 0.2 else "rested"
    else:
        label = "steady"
    confidence = min(0.9, 0.3 + 0.15 * len(set(kinds)))
    return OwnerState(
        energy=energy,
        valence=valence,
        arousal=arousal,
        label=label,
        confidence=confidence,
        kinds=tuple(sorted(set(kinds))),
    )
