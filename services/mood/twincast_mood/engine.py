"""One guest's mood, from their words and their voice. Knows nothing of the bus.

`GuestMood` holds one session's prosody tracker, speaker baseline, fusion window and change
gate; the text engine is shared by every session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from twincast_mood.fusion import ChangeGate, Estimate, Evidence, MoodFusion
from twincast_mood.prosody import ProsodyReading, ProsodyTracker, SpeakerBaseline, voice_mood
from twincast_mood.text import TextMood, TextMoodEngine

PARTIAL_WEIGHT = 0.5

Clock = Callable[[], float]


@dataclass
class GuestMood:
    text: TextMoodEngine
    clock: Clock = time.monotonic
    voice: bool = True
    tracker: ProsodyTracker = field(default_factory=ProsodyTracker)
    baseline: SpeakerBaseline = field(default_factory=SpeakerBaseline)
    fusion: MoodFusion = field(default_factory=MoodFusion)
    gate: ChangeGate = field(default_factory=ChangeGate)
    segments: int = 0

    def hear(self, pcm: bytes, *, last: bool = False) -> Estimate | None:
        """Feeds guest audio; an estimate worth publishing, if the voice changed it."""
        readings = self.tracker.feed(pcm, last=last)
        if not readings or not self.voice:
            return None
        for reading in readings:
            self._voice(reading)
        return self._decide()

    def _voice(self, reading: ProsodyReading) -> None:
        z = self.baseline.z(reading)
        mood = voice_mood(reading, z, self.baseline.speech_s)
        # An interim reading is replaced by the next one of the same stretch of speech.
        self.fusion.add(
            Evidence(
                key=f"voice-{self.segments}",
                source="voice",
                at=self.clock(),
                dist=mood.dist,
                confidence=mood.confidence,
                valence=mood.valence,
                arousal=mood.arousal,
                hurried=mood.fast,
            )
        )
        if reading.final:
            self.baseline.add(reading, z)
            self.segments += 1

    def read(self, text: str, *, key: str, final: bool = True) -> Estimate | None:
        """Takes in words (a partial transcript counts half); an estimate worth publishing."""
        mood = self.text.estimate(text)
        self.fusion.add(_text_evidence(mood, key=key, at=self.clock(), final=final))
        return self._decide()

    def current(self) -> Estimate:
        return self.fusion.estimate(self.clock())

    def _decide(self) -> Estimate | None:
        estimate = self.fusion.estimate(self.clock())
        return estimate if self.gate.worth(estimate) else None


def _text_evidence(mood: TextMood, *, key: str, at: float, final: bool) -> Evidence:
    return Evidence(
        key=f"text-{key}",
        source="text",
        at=at,
        dist=mood.dist,
        confidence=mood.confidence,
        valence=mood.valence,
        arousal=mood.arousal,
        hurried=mood.hurried,
        weight=1.0 if final else PARTIAL_WEIGHT,
    )
