"""Which events travel on which subject, who sends them and who listens.

The generated pages (`docs/events.md`, `docs/asyncapi.yaml`) are made from this table, so the
documentation of the bus cannot drift from the contract. Knows nothing of the services' code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel

from twincast_shared.contract import events as e
from twincast_shared.contract import subjects as s

KeyName = Literal["session", "twin", "service"]

# The audio subjects carry raw PCM16 bytes, described by their NATS headers, not JSON.
PCM: Final = "pcm"


@dataclass(frozen=True, slots=True)
class Channel:
    family: s.Subject
    key: KeyName
    messages: tuple[type[BaseModel], ...] | Literal["pcm"]
    producers: str
    consumers: str
    summary: str
    stream: s.Stream | None = None
    request_reply: bool = False

    @property
    def address(self) -> str:
        return f"{s.PREFIX}.{self.family.stem}.{{{self.key}}}"


CHANNELS: Final[tuple[Channel, ...]] = (
    Channel(
        s.AUDIO_IN,
        "session",
        PCM,
        "gateway, `twincast ask`",
        "stt, mood (prosody)",
        "The guest's voice: PCM16 mono 16 kHz in 20 ms frames; `tc-last: 1` closes an utterance.",
    ),
    Channel(
        s.AUDIO_OWNER,
        "session",
        PCM,
        "gateway",
        "stt (transcribed as `speaker: owner`, no turns)",
        "The owner's voice while their console holds the floor, framed as `audio.in`.",
    ),
    Channel(
        s.TEXT_IN,
        "session",
        (e.GuestTextSubmitted,),
        "gateway, `twincast ask`",
        "reasoning, mood",
        "A question the guest typed.",
    ),
    Channel(
        s.TURN,
        "session",
        (e.SpeechStarted, e.SpeechEnded),
        "stt",
        "tts (barge-in), gateway, reasoning",
        "Voice activity: the guest started or finished a turn (position in the audio stream).",
    ),
    Channel(
        s.STT_PARTIAL,
        "session",
        (e.UtteranceTranscribed,),
        "stt",
        "mood, reasoning (speculative), consoles",
        "Partial (every 250 ms of speech) and speculative transcripts, `final=false`.",
    ),
    Channel(
        s.STT_FINAL,
        "session",
        (e.UtteranceTranscribed,),
        "stt",
        "reasoning, mood, consoles",
        "The final transcript of a turn, `final=true`.",
    ),
    Channel(
        s.MOOD,
        "session",
        (e.MoodEstimated,),
        "mood",
        "tts, gateway (reasoning reads the latest from Valkey)",
        "The guest's mood or the owner's state.",
    ),
    Channel(
        s.REPLY,
        "session",
        (e.ReplyChunk,),
        "reasoning",
        "tts, gateway, consoles",
        "One sentence of the twin's answer, with its citations.",
    ),
    Channel(
        s.DRAFT,
        "session",
        (e.ReplyDrafted,),
        "reasoning",
        "gateway → owner consoles",
        "Shadow mode: the whole answer, held for the owner's decision.",
    ),
    Channel(
        s.TTS_AUDIO,
        "session",
        PCM,
        "tts",
        "gateway, clients",
        "The twin's voice: PCM16 22.05 kHz, one chunk per sentence or clause; "
        "`tc-last: 1` ends the reply.",
    ),
    Channel(
        s.TTS_VISEMES,
        "session",
        (e.VisemeTrack,),
        "tts",
        "gateway",
        "Mouth shapes for the audio chunk with the same `seq`, timed in its samples.",
    ),
    Channel(
        s.AVATAR,
        "session",
        (e.AnimationFrame,),
        "gateway",
        "3D clients, virtual worlds",
        "The avatar's animation at 25 fps: viseme, mouth, expression, blink, head pose.",
    ),
    Channel(
        s.CONTROL,
        "session",
        (e.Interrupt, e.TakeOver, e.HandBack, e.Say, e.DraftDecided, e.SessionEnded),
        "gateway, console",
        "reasoning, tts, stt, mood",
        "Session control: interrupt, the owner's floor, typed lines, shadow decisions, hang-up.",
    ),
    Channel(
        s.AUDIT,
        "session",
        (e.AuditRecord,),
        "gateway",
        "`twincast audit`, consoles",
        "Every word said in the owner's name, every cut and every change of the floor.",
        stream=s.AUDIT_STREAM,
    ),
    Channel(
        s.SIGNALS,
        "twin",
        (e.OwnerSignal, e.OwnerConsent),
        "gateway's owner API, devices",
        "mood",
        "The owner's signals (checked against plausible ranges) and their consent to them.",
    ),
    Channel(
        s.REJECTED,
        "service",
        (e.Rejected,),
        "every service",
        "operators",
        "Dead letters: anything that broke the contract, with the reason and the payload.",
        stream=s.REJECTED_STREAM,
    ),
    Channel(
        s.HEALTH,
        "service",
        (),
        "clients",
        "every service",
        "Readiness, as request/reply.",
        request_reply=True,
    ),
)


def message_name(model: type[BaseModel]) -> str:
    return model.__name__


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")
