"""How the answer is said, from the guest's mood. Knows nothing of the bus.

Only the framing changes: a short acknowledgement before the answer for a frustrated, anxious
or sad guest, and only the first sentence(s) of the answer for a guest in a hurry. The owner's
sentences are never reworded, the citations stay, and the greeting (which tells the guest this
is an AI twin) is never dropped. A deferral is never cut: it is the twin's promise.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

from twincast_reasoning.answering.extractive import Answer
from twincast_shared.contract import MoodEstimated

MIN_CONFIDENCE: Final = 0.3
HURRIED_WORDS: Final = 14  # the short answer: first sentence, or more until this many words
ACKNOWLEDGE: Final = {
    "frustrated": "I'm sorry this has been frustrating.",
    "anxious": "I understand this feels worrying.",
    "sad": "I'm sorry to hear that.",
}
_HURRIED = re.compile(
    r"\b(?:quick(?:ly)?|hurry|in a rush|rushing|short version|keep it short|briefly|"
    r"in short|no time|not much time|running late|bottom line|asap)\b",
    re.IGNORECASE,
)


def hurried(question: str, mood: MoodEstimated | None) -> bool:
    if _HURRIED.search(question):
        return True
    return mood is not None and mood.hurried and mood.confidence >= MIN_CONFIDENCE / 2


def adapt(answer: Answer, *, question: str, mood: MoodEstimated | None) -> Answer:
    """The answer framed for the guest's mood (a guest mood; an owner's state is ignored)."""
    if mood is not None and mood.whose != "guest":
        mood = None
    body = answer.body
    opening = answer.sentences[: len(answer.sentences) - len(body)]
    if hurried(question, mood) and not answer.deferred:
        body = _first_sentences(body)
    acknowledgement: tuple[str, ...] = ()
    if mood is not None and mood.confidence >= MIN_CONFIDENCE and mood.label in ACKNOWLEDGE:
        acknowledgement = (ACKNOWLEDGE[mood.label],)
    if body == answer.body and not acknowledgement:
        return answer
    # `body` stays the owner's own sentences: it is what the conversation memory keeps.
    return dataclasses.replace(answer, sentences=(*opening, *acknowledgement, *body), body=body)


def _first_sentences(body: tuple[str, ...]) -> tuple[str, ...]:
    kept: list[str] = []
    for sentence in body:
        kept.append(sentence)
        if sum(len(s.split()) for s in kept) >= HURRIED_WORDS:
            break
    return tuple(kept)
