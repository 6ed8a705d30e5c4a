"""Every NATS subject TwinCast uses. No other module spells a subject string."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "twincast"

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def is_valid_token(value: str) -> bool:
    """A session, twin or service id usable as one subject token."""
    return bool(_TOKEN.fullmatch(value))


@dataclass(frozen=True, slots=True)
class Subject:
    """A family of subjects `twincast.<stem>.<key>`, keyed by session, twin or service."""

    stem: str

    @property
    def all(self) -> str:
        return f"{PREFIX}.{self.stem}.*"

    def of(self, key: str) -> str:
        if not is_valid_token(key):
            raise ValueError(f"not a valid subject token: {key!r}")
        return f"{PREFIX}.{self.stem}.{key}"

    def key_of(self, subject: str) -> str | None:
        """The key token of a concrete subject of this family, or None if it is not one."""
        head = f"{PREFIX}.{self.stem}."
        if not subject.startswith(head):
            return None
        key = subject[len(head) :]
        return key if is_valid_token(key) else None


AUDIO_IN: Final = Subject("audio.in")
AUDIO_OWNER: Final = Subject("audio.owner")
TEXT_IN: Final = Subject("text.in")
TURN: Final = Subject("turn")
STT_PARTIAL: Final = Subject("stt.partial")
STT_FINAL: Final = Subject("stt.final")
MOOD: Final = Subject("mood")
REPLY: Final = Subject("reply")
DRAFT: Final = Subject("draft")
TTS_AUDIO: Final = Subject("tts.audio")
TTS_VISEMES: Final = Subject("tts.visemes")
AVATAR: Final = Subject("avatar")
CONTROL: Final = Subject("control")
SIGNALS: Final = Subject("signals")
REJECTED: Final = Subject("rejected")
AUDIT: Final = Subject("audit")
HEALTH: Final = Subject("health")


@dataclass(frozen=True, slots=True)
class Stream:
    """A JetStream stream that keeps what core-NATS publishers send to its subjects."""

    name: str
    families: tuple[Subject, ...]
    max_age_s: int

    @property
    def subjects(self) -> list[str]:
        return [family.all for family in self.families]


# Dead letters are kept for a week, whether or not anyone is listening when they happen.
REJECTED_STREAM: Final = Stream("TWINCAST_REJECTED", (REJECTED,), max_age_s=7 * 24 * 3600)
# Every word spoken in a session, by the twin or by its owner, and every change of the floor.
AUDIT_STREAM: Final = Stream("TWINCAST_AUDIT", (AUDIT,), max_age_s=365 * 24 * 3600)
STREAMS: Final = (REJECTED_STREAM, AUDIT_STREAM)

ALL_SUBJECTS: Final = (
    AUDIO_IN,
    AUDIO_OWNER,
    TEXT_IN,
    TURN,
    STT_PARTIAL,
    STT_FINAL,
    MOOD,
    REPLY,
    DRAFT,
    TTS_AUDIO,
    TTS_VISEMES,
    AVATAR,
    CONTROL,
    SIGNALS,
    REJECTED,
    AUDIT,
    HEALTH,
)
