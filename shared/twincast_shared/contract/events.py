"""Events that cross a process boundary: pydantic v2, frozen, closed, versioned."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Final, Literal, TypeAlias
from uuid import uuid4

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from twincast_shared.contract import subjects as s

SCHEMA_VERSION: Literal[1] = 1


def _token(value: str) -> str:
    if not s.is_valid_token(value):
        raise ValueError("must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return value


Token = Annotated[str, AfterValidator(_token)]
Unit = Annotated[float, Field(ge=-1.0, le=1.0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Scope = Literal["public", "colleagues", "private"]


# How far ahead of this host's clock a device's timestamp may be and still be believed.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid4().hex


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=20_000)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Token = Field(default_factory=_new_id)
    session_id: Token
    ts: datetime = Field(default_factory=_now)


class GuestTextSubmitted(Event):
    """A guest typed a question instead of speaking it."""

    type: Literal["guest_text"] = "guest_text"
    text: Annotated[str, Field(min_length=1, max_length=4_000)]


class SpeechStarted(Event):
    """The guest started talking; `at_ms` is the onset in the session's audio stream."""

    type: Literal["speech_started"] = "speech_started"
    utterance_id: Token
    at_ms: Annotated[float, Field(ge=0)]


class SpeechEnded(Event):
    """The guest's turn is over; `at_ms` is where the speech stopped in the audio stream."""

    type: Literal["speech_ended"] = "speech_ended"
    utterance_id: Token
    at_ms: Annotated[float, Field(ge=0)]


class UtteranceTranscribed(Event):
    """What the guest said. A `speculative` transcript (never `final`) is the whole utterance,
    sent as soon as the guest pauses: if the pause becomes the end of the turn, the final
    transcript follows with the same text; if they go on, it is superseded."""

    type: Literal["utterance_transcribed"] = "utterance_transcribed"
    utterance_id: Token
    text: str
    final: bool
    speculative: bool = False
    speaker: Literal["guest", "owner"] = "guest"

    @model_validator(mode="after")
    def _speculative_is_not_final(self) -> UtteranceTranscribed:
        if self.speculative and self.final:
            raise ValueError("a transcript is either speculative or final")
        return self

    language: str = "en"
    audio_ms: Annotated[float, Field(ge=0)] = 0.0
    compute_ms: Annotated[float, Field(ge=0)] = 0.0


MoodBasis = Literal["text", "voice", "signals"]


class MoodEstimated(Event):
    """The guest's mood (from their words and voice) or the owner's state (from signals).

    `confidence` is how sure the estimate is of its `label`; `hurried` says the guest wants
    it short; `basis` names what the estimate rests on.
    """

    type: Literal["mood_estimated"] = "mood_estimated"
    whose: Literal["guest", "owner"]
    valence: Unit
    arousal: Unit
    energy: Share
    label: Annotated[str, Field(min_length=1, max_length=32)]
    source_event_id: Token | None = None
    confidence: Share = 1.0
    hurried: bool = False
    basis: tuple[MoodBasis, ...] = ()


class Citation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source_id: Annotated[str, Field(min_length=1, max_length=200)]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    date: str | None = None
    origin: str | None = None
    location: str | None = None


class ReplyChunk(Event):
    """One sentence of the twin's answer. A `provisional` reply answers a speculative
    transcript: it may be synthesized at once, but is only heard if its utterance ends."""

    type: Literal["reply_chunk"] = "reply_chunk"
    reply_id: Token
    in_reply_to: Token
    utterance_id: Token | None = None
    provisional: bool = False
    seq: Annotated[int, Field(ge=0)]
    text: str
    citations: tuple[Citation, ...] = ()
    expression: Annotated[str, Field(max_length=32)] = "neutral"
    deferred: bool = False
    final: bool
    author: Literal["twin", "owner"] = "twin"
    """`owner`: words the owner typed or edited, spoken in the twin's voice."""


class ReplyDrafted(Event):
    """Shadow mode: the twin's whole answer, held until the owner approves, edits or rejects it."""

    type: Literal["reply_drafted"] = "reply_drafted"
    draft_id: Token
    in_reply_to: Token
    utterance_id: Token | None = None
    question: str
    sentences: tuple[str, ...]
    citations: tuple[Citation, ...] = ()
    expression: Annotated[str, Field(max_length=32)] = "neutral"
    deferred: bool = False


class Viseme(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    viseme: Annotated[str, Field(min_length=1, max_length=16)]
    start: Annotated[int, Field(ge=0)]
    end: Annotated[int, Field(ge=0)]


class VisemeTrack(Event):
    """Mouth shapes for one audio chunk, timed in samples of that chunk."""

    type: Literal["viseme_track"] = "viseme_track"
    reply_id: Token
    seq: Annotated[int, Field(ge=0)]
    sample_rate: Annotated[int, Field(gt=0)]
    visemes: tuple[Viseme, ...]


class HeadPose(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    yaw: Annotated[float, Field(ge=-45, le=45)] = 0.0
    pitch: Annotated[float, Field(ge=-45, le=45)] = 0.0
    roll: Annotated[float, Field(ge=-45, le=45)] = 0.0


class AnimationFrame(Event):
    """One video frame's worth of the avatar's face, for clients that animate their own model.

    `t_ms` is on the session's media clock, the same clock that stamps its audio and video.
    Angles are degrees; `blink` is eyelid closure; `energy` is the owner's state.
    """

    type: Literal["animation_frame"] = "animation_frame"
    t_ms: Annotated[float, Field(ge=0)]
    speaker: Literal["twin", "owner", "none"]
    viseme: Annotated[str, Field(min_length=1, max_length=16)]
    mouth_open: Share
    expression: Annotated[str, Field(min_length=1, max_length=32)]
    expression_weight: Share
    blink: Share
    head: HeadPose
    energy: Share


class Interrupt(Event):
    type: Literal["interrupt"] = "interrupt"
    reason: Annotated[str, Field(max_length=200)] = "barge-in"


class TakeOver(Event):
    """The owner's console holds the floor; `fence` orders every holding of it."""

    type: Literal["take_over"] = "take_over"
    holder: Token
    fence: Annotated[int, Field(ge=1)]


class HandBack(Event):
    """The floor is the twin's again: handed back by the owner, or `expired` with the console."""

    type: Literal["hand_back"] = "hand_back"
    holder: Token
    fence: Annotated[int, Field(ge=1)]
    reason: Literal["owner", "expired"] = "owner"


class Say(Event):
    """The owner typed a line for the twin to speak in its voice."""

    type: Literal["say"] = "say"
    text: Annotated[str, Field(min_length=1, max_length=4_000)]


class DraftDecided(Event):
    """The owner's verdict on a shadow-mode draft; `text` replaces the draft when edited."""

    type: Literal["draft_decided"] = "draft_decided"
    draft_id: Token
    decision: Literal["approve", "edit", "reject"]
    text: Annotated[str, Field(max_length=4_000)] = ""

    @model_validator(mode="after")
    def _edit_has_text(self) -> DraftDecided:
        if self.decision == "edit" and not self.text.strip():
            raise ValueError("an edited draft needs its new text")
        return self


class SessionEnded(Event):
    type: Literal["session_ended"] = "session_ended"


@dataclass(frozen=True, slots=True)
class SignalKind:
    """What one kind of owner signal measures, in which unit, and which values are plausible."""

    unit: str
    low: float
    high: float
    meaning: str


SIGNAL_KINDS: Final[Mapping[str, SignalKind]] = MappingProxyType(
    {
        "heart_rate": SignalKind("bpm", 30, 220, "current heart rate"),
        "resting_heart_rate": SignalKind("bpm", 30, 120, "today's resting heart rate"),
        "hrv": SignalKind("ms", 5, 300, "heart-rate variability (RMSSD)"),
        "sleep_hours": SignalKind("h", 0, 16, "sleep last night"),
        "steps": SignalKind("steps", 0, 100_000, "steps today"),
        "calendar_load": SignalKind("share", 0, 1, "share of today's working hours booked"),
        "meetings_today": SignalKind("meetings", 0, 40, "meetings on today's calendar"),
    }
)


class OwnerSignal(Event):
    """One measurement about the owner (a wearable, the calendar). `session_id` carries the
    twin's id: a signal belongs to no session. `ts` is when it was measured."""

    type: Literal["owner_signal"] = "owner_signal"
    twin_id: Token
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    value: float

    @model_validator(mode="after")
    def _plausible(self) -> OwnerSignal:
        spec = SIGNAL_KINDS.get(self.kind)
        if spec is None:
            raise ValueError(
                f"unknown signal kind {self.kind[:64]!r}; known: {', '.join(SIGNAL_KINDS)}"
            )
        if not math.isfinite(self.value):
            raise ValueError(f"{self.kind} must be a finite number")
        if not spec.low <= self.value <= spec.high:
            raise ValueError(
                f"{self.kind}={self.value:g} is implausible: expected "
                f"{spec.low:g}..{spec.high:g} {spec.unit} ({spec.meaning})"
            )
        if self.ts > _now() + MAX_CLOCK_SKEW:
            raise ValueError("ts is in the future: a signal is a measurement already taken")
        return self


class OwnerConsent(Event):
    """The owner switched their signals on or off; off erases what was stored."""

    type: Literal["owner_consent"] = "owner_consent"
    twin_id: Token
    signals: bool


class AuditRecord(Event):
    """One line of a session's audit: words spoken to the guest, and who held the floor."""

    type: Literal["audit"] = "audit"
    twin_id: Token
    guest_id: Token | None = None
    kind: Literal["spoken", "cut", "floor", "refused", "draft"]
    speaker: Literal["twin", "owner", "guest", "system"]
    text: Annotated[str, Field(max_length=4_000)] = ""
    reply_id: Token | None = None
    author: Literal["twin", "owner"] = "twin"
    citations: tuple[Citation, ...] = ()


class Rejected(BaseModel):
    """Input a service could not accept, kept whole so that nothing is lost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["rejected"] = "rejected"
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Token = Field(default_factory=_new_id)
    ts: datetime = Field(default_factory=_now)
    session_id: Token | None = None
    service: Token
    subject: str
    reason: str
    payload_b64: str
    payload_bytes: Annotated[int, Field(ge=0)]
    truncated: bool = False
    headers: dict[str, str] = Field(default_factory=dict)


ControlEvent: TypeAlias = Annotated[
    Interrupt | TakeOver | HandBack | Say | DraftDecided | SessionEnded,
    Field(discriminator="type"),
]
TurnEvent: TypeAlias = Annotated[SpeechStarted | SpeechEnded, Field(discriminator="type")]

SignalsEvent: TypeAlias = Annotated[OwnerSignal | OwnerConsent, Field(discriminator="type")]

CONTROL_EVENT: TypeAdapter[ControlEvent] = TypeAdapter(ControlEvent)
TURN_EVENT: TypeAdapter[TurnEvent] = TypeAdapter(TurnEvent)
SIGNALS_EVENT: TypeAdapter[SignalsEvent] = TypeAdapter(SignalsEvent)

AnyEvent: TypeAlias = (
    GuestTextSubmitted
    | SpeechStarted
    | SpeechEnded
    | UtteranceTranscribed
    | MoodEstimated
    | ReplyChunk
    | ReplyDrafted
    | VisemeTrack
    | AnimationFrame
    | Interrupt
    | TakeOver
    | HandBack
    | Say
    | SessionEnded
    | OwnerSignal
    | DraftDecided
    | AuditRecord
    | OwnerConsent
)


def subject_for(event: AnyEvent) -> str:
    """The one subject an event is published on."""
    match event:
        case GuestTextSubmitted():
            return s.TEXT_IN.of(event.session_id)
        case SpeechStarted() | SpeechEnded():
            return s.TURN.of(event.session_id)
        case UtteranceTranscribed(final=True):
            return s.STT_FINAL.of(event.session_id)
        case UtteranceTranscribed():
            return s.STT_PARTIAL.of(event.session_id)
        case MoodEstimated():
            return s.MOOD.of(event.session_id)
        case ReplyChunk():
            return s.REPLY.of(event.session_id)
        case ReplyDrafted():
            return s.DRAFT.of(event.session_id)
        case AuditRecord():
            return s.AUDIT.of(event.session_id)
        case VisemeTrack():
            return s.TTS_VISEMES.of(event.session_id)
        case AnimationFrame():
            return s.AVATAR.of(event.session_id)
        case OwnerSignal() | OwnerConsent():
            return s.SIGNALS.of(event.twin_id)
        case Interrupt() | TakeOver() | HandBack() | Say() | DraftDecided() | SessionEnded():
            return s.CONTROL.of(event.session_id)
    raise TypeError(f"no subject for {type(event).__name__}")
