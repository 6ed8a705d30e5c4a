"""Mood from a guest's words: VADER sentiment plus lexical cues for each label. No bus here.

VADER gives valence (how positive or negative the words are). It cannot tell frustration
from sadness or worry, so phrases typical of each label add evidence for it; a cue right after
a negation ("not worried") counts for nothing. Words without cues are read as calm, with
little confidence: the words simply do not say.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Final

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from twincast_mood.labels import LABELS, PLACE, Distribution, normalized

# Cue patterns per label with their weight; matched on lower-cased text at word starts.
CUES: Final[dict[str, tuple[tuple[str, float], ...]]] = {
    "frustrated": (
        (r"frustrat\w*", 1.5),
        (r"annoy\w*", 1.3),
        (r"ridiculous", 1.3),
        (r"unacceptable", 1.4),
        (r"fed up", 1.5),
        (r"sick of", 1.4),
        (r"useless", 1.2),
        (r"waste of", 1.2),
        (r"again\b", 0.6),
        (r"still (?:not|no|doesn't|don't|haven't|hasn't|isn't)", 1.0),
        (r"(?:doesn't|does not|didn't|won't) work", 1.0),
        (r"not working", 1.0),
        (r"broken", 0.8),
        (r"angry|furious|mad at", 1.5),
        (r"hate\b", 1.0),
        (r"(?:second|third|fourth|fifth) time", 1.0),
        (r"nobody (?:has|ever|answers|told|cares)", 1.0),
        (r"seriously", 0.8),
        (r"why (?:can't|can not|won't|doesn't|isn't) (?:anyone|anybody|you|it)", 1.0),
        (r"keep (?:asking|telling|getting)", 0.8),
        (r"enough", 0.5),
    ),
    "anxious": (
        (r"worr\w*", 1.4),
        (r"nervous\w*", 1.4),
        (r"anxious|anxiety", 1.5),
        (r"afraid", 1.3),
        (r"scared|terrified|frightened", 1.4),
        (r"panic\w*", 1.4),
        (r"what if", 1.0),
        (r"stress\w*", 1.0),
        (r"uneasy", 1.2),
        (r"(?:i'm|i am) not sure (?:if|whether|i can|i'll)", 0.7),
        (r"deadline", 0.6),
        (r"risk\w*", 0.5),
        (r"in time\b", 0.4),
        (r"can't sleep|couldn't sleep", 1.0),
        (r"what happens if", 0.9),
        (r"(?:is|will) (?:it|that|this) (?:be )?(?:safe|dangerous|okay|ok)\b", 0.6),
    ),
    "sad": (
        (r"sad\b|sadly|sadness", 1.5),
        (r"miss(?:ed|ing)? (?:him|her|them|it|you|my|our|the)", 1.2),
        (r"lonely|alone\b", 1.2),
        (r"unhappy", 1.3),
        (r"disappoint\w*", 1.1),
        (r"heartbroken|heartbreaking", 1.5),
        (r"passed away|died\b|death of", 1.4),
        (r"grie\w*", 1.4),
        (r"cry\w*|cried|tears", 1.2),
        (r"depress\w*", 1.4),
        (r"hopeless", 1.4),
        (r"gave up|give up", 0.9),
        (r"lost (?:my|our|the|her|his)", 1.0),
        (r"gone\b", 0.5),
        (r"feel(?:ing)? (?:low|down|empty)", 1.3),
        (r"nothing (?:seems|helps|matters)", 1.0),
    ),
    "happy": (
        (r"great\b", 0.9),
        (r"love\b|loved|lovely", 1.0),
        (r"wonderful", 1.2),
        (r"amazing|awesome|fantastic|brilliant|excellent", 1.2),
        (r"thank\w*", 0.8),
        (r"glad\b|happy\b|delighted|thrilled", 1.3),
        (r"excit\w*", 1.1),
        (r"perfect\b", 0.8),
        (r"fun\b", 0.7),
        (r"enjoy\w*", 0.9),
        (r"can't wait", 1.0),
        (r"good news", 1.0),
    ),
    "curious": (
        (r"wonder\b|wondering|wondered", 1.3),
        (r"curious", 1.4),
        (r"interest\w*", 0.9),
        (r"fascinat\w*", 1.2),
        (r"tell me more", 1.3),
        (r"how (?:does|do|did|come|would|could)", 0.8),
        (r"why (?:does|do|did|is|are|would)", 0.8),
        (r"what (?:makes|causes|happens when|would happen)", 0.9),
        (r"i'd (?:love|like) to (?:know|learn|understand|hear)", 1.0),
        (r"explain", 0.7),
        (r"is it true", 0.8),
    ),
    "calm": (
        (r"no rush|no hurry|take your time", 1.3),
        (r"whenever", 0.6),
        (r"relax\w*|calm\w*|peaceful", 1.1),
        (r"(?:that's|it's) (?:fine|okay|ok|alright)", 0.8),
        (r"no worries", 1.0),
    ),
}

HURRIED_CUES: Final = (
    r"quick\w*",
    r"hurry|hurried",
    r"in a rush|rushing",
    r"short version|keep it short|briefly|in brief|in short",
    r"no time|not much time|running late|late for",
    r"just tell me",
    r"asap|right now",
    r"(?:one|a) minute",
    r"bottom line",
)

_NEGATION: Final = re.compile(
    r"\b(?:not|no|never|don't|didn't|isn't|wasn't|aren't|nothing)\W+(?:[\w']+\W+){0,2}$"
)
_COMPILED: Final = {
    label: tuple((re.compile(r"(?<![\w'])" + pattern), weight) for pattern, weight in cues)
    for label, cues in CUES.items()
}
_HURRIED: Final = tuple(re.compile(r"(?<![\w'])(?:" + p + r")") for p in HURRIED_CUES)
_QUESTION: Final = re.compile(r"\?\s*$")


@dataclass(frozen=True, slots=True)
class TextMood:
    """What the words say: a distribution over `LABELS`, how much it can be trusted."""

    dist: Distribution
    confidence: float
    valence: float
    arousal: float
    hurried: bool
    cues: dict[str, float] = field(default_factory=dict)


class TextMoodEngine:
    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    def estimate(self, text: str) -> TextMood:
        lowered = " ".join(text.lower().replace("\u2019", "'").split())
        vader = self._vader.polarity_scores(text)
        valence = float(vader["compound"])
        cues = {label: _cue_weight(lowered, label) for label in LABELS}
        # Sentiment separates the positive labels from the negative ones.
        if valence >= 0.3:
            cues["happy"] += 1.2 * valence
        elif valence <= -0.3:
            for label, share in (("frustrated", 0.5), ("sad", 0.4), ("anxious", 0.4)):
                cues[label] += share * -valence
        exclaims = min(text.count("!"), 3)
        letters = [c for c in text if c.isalpha()]
        shouting = sum(c.isupper() for c in letters) / len(letters) if len(letters) > 8 else 0.0
        if exclaims and valence < -0.1:
            cues["frustrated"] += 0.5 * exclaims
        elif exclaims and valence > 0.1:
            cues["happy"] += 0.3 * exclaims
        if shouting > 0.6:
            cues["frustrated"] += 1.0
        if _QUESTION.search(text.strip()) and valence > -0.3:
            cues["curious"] += 0.6
        evidence = sum(cues.values())
        # The calm prior: with no cue at all the words read as calm, but say little.
        scores = {label: cues[label] for label in LABELS}
        scores["calm"] += 0.6
        dist = normalized({k: v**1.5 for k, v in scores.items()})
        confidence = 1.0 - math.exp(-0.8 * evidence) if evidence > 0 else 0.15
        intensity = float(vader["pos"] + vader["neg"])
        arousal_cues = cues["frustrated"] + cues["anxious"] + 0.5 * cues["happy"]
        arousal = math.tanh(
            -0.3
            + 0.6 * intensity
            + 0.3 * arousal_cues
            + 0.2 * exclaims
            + 0.8 * shouting
            - 0.4 * cues["sad"]
            - 0.4 * cues["calm"]
        )
        hurried = any(pattern.search(lowered) for pattern in _HURRIED)
        placed = sum(dist[label] * PLACE[label][0] for label in LABELS)
        return TextMood(
            dist=dist,
            confidence=max(0.15, min(0.95, confidence)),
            # VADER misses much of what the cues catch ("it still doesn't work" scores 0).
            valence=max(-1.0, min(1.0, 0.5 * valence + 0.5 * placed)),
            arousal=max(-1.0, min(1.0, arousal)),
            hurried=hurried,
            cues={k: round(v, 3) for k, v in cues.items() if v > 0},
        )


def _cue_weight(text: str, label: str) -> float:
    total = 0.0
    for pattern, weight in _COMPILED[label]:
        for match in pattern.finditer(text):
            if _NEGATION.search(text[max(0, match.start() - 40) : match.start()]):
                continue
            total += weight
    return total
