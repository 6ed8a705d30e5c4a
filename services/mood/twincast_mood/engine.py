"""Mood from a guest's words (VADER sentiment). Knows nothing of the bus."""

from __future__ import annotations

from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


@dataclass(frozen=True, slots=True)
class Mood:
    valence: float
    arousal: float
    energy: float
    label: str


class TextMoodEngine:
    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    def estimate(self, text: str) -> Mood:
        scores = self._vader.polarity_scores(text)
        valence = float(scores["compound"])
        intensity = float(scores["pos"] + scores["neg"])
        exclaims = min(text.count("!"), 3) / 3
        letters = [c for c in text if c.isalpha()]
        shouting = sum(c.isupper() for c in letters) / len(letters) if len(letters) > 8 else 0.0
        energy = min(1.0, 0.3 + 0.4 * intensity + 0.2 * exclaims + 0.3 * shouting)
        arousal = max(-1.0, min(1.0, 2 * energy - 1))
        if valence >= 0.35:
            label = "excited" if arousal > 0.2 else "pleased"
        elif valence <= -0.35:
            label = "upset" if arousal > 0.2 else "sad"
        else:
            label = "neutral"
        return Mood(valence=valence, arousal=arousal, energy=energy, label=label)
