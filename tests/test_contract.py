from __future__ import annotations

import pytest
from pydantic import ValidationError

from twincast_shared.contract import (
    CONTROL_EVENT,
    AudioFormatError,
    GuestTextSubmitted,
    Interrupt,
    MoodEstimated,
    PcmChunk,
    ReplyChunk,
    UtteranceTranscribed,
    subject_for,
)
from twincast_shared.contract import subjects as s


def reply(**overrides: object) -> ReplyChunk:
    fields: dict[str, object] = {
        "session_id": "s1",
        "reply_id": "r1",
        "in_reply_to": "e1",
        "seq": 0,
        "text": "Hello.",
        "final": True,
    }
    fields.update(overrides)
    return ReplyChunk.model_validate(fields)


def test_events_are_frozen_closed_tagged_and_versioned() -> None:
    event = reply()
    assert event.type == "reply_chunk"
    assert event.schema_version == 1
    assert len(event.event_id) == 32
    assert event.ts.tzinfo is not None
    with pytest.raises(ValidationError):
        event.text = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        reply(sneaky=True)
    with pytest.raises(ValidationError):
        ReplyChunk.model_validate_json(event.model_dump_json().replace("reply_chunk", "other"))


def test_events_round_trip_through_json() -> None:
    event = reply(text="Twenty-one species.")
    assert ReplyChunk.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize("session", ["", "a.b", "a b", "*", ">", "x" * 65])
def test_session_ids_must_be_one_subject_token(session: str) -> None:
    with pytest.raises(ValidationError):
        GuestTextSubmitted(session_id=session, text="hi")
    with pytest.raises(ValueError, match="token"):
        s.REPLY.of(session)


def test_each_event_has_one_subject() -> None:
    partial = UtteranceTranscribed(session_id="s1", utterance_id="u", text="a", final=False)
    final = partial.model_copy(update={"final": True})
    assert subject_for(partial) == "twincast.stt.partial.s1"
    assert subject_for(final) == "twincast.stt.final.s1"
    assert subject_for(reply()) == "twincast.reply.s1"
    assert subject_for(Interrupt(session_id="s1")) == "twincast.control.s1"
    assert s.REPLY.key_of("twincast.reply.s1") == "s1"
    assert s.REPLY.key_of("twincast.replyx.s1") is None
    assert len({f.stem for f in s.ALL_SUBJECTS}) == len(s.ALL_SUBJECTS)


def test_control_events_are_a_tagged_union() -> None:
    event = CONTROL_EVENT.validate_json(Interrupt(session_id="s1").model_dump_json())
    assert isinstance(event, Interrupt)


def test_mood_values_are_bounded() -> None:
    with pytest.raises(ValidationError):
        MoodEstimated(session_id="s", whose="guest", valence=2, arousal=0, energy=0.5, label="x")


def test_pcm_chunk_round_trips_through_headers() -> None:
    chunk = PcmChunk(pcm=b"\x01\x00" * 320, sample_rate=16_000, seq=7, stream="u1", last=True)
    back = PcmChunk.from_wire(chunk.pcm, chunk.headers(), expect_rate=16_000)
    assert back == chunk
    assert back.samples == 320
    assert back.duration_ms == 20.0


def _headers(**changes: str | None) -> dict[str, str]:
    headers = PcmChunk(pcm=b"", sample_rate=16_000, seq=0, stream="u1").headers()
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    return headers


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"\x00" * 641, _headers(), "whole number"),
        (b"\x00" * 640, _headers(tc_sample_rate="44100"), "sample rate 44100"),
        (b"\x00" * 640, _headers(tc_sample_rate="fast"), "not an integer"),
        (b"\x00" * 640, _headers(tc_sample_rate=None), "missing header tc-sample-rate"),
        (b"\x00" * 640, _headers(tc_format="mp3"), "tc-format"),
        (b"\x00" * 640, _headers(tc_stream="a.b"), "tc-stream"),
        (b"\x00" * 640, _headers(tc_channels="6"), "tc-channels"),
        (b"", _headers(), "empty chunk"),
        (b"\x00" * (31 * 16_000 * 2), _headers(), "longer than"),
    ],
)
def test_bad_pcm_is_refused_with_a_reason(
    body: bytes, headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(AudioFormatError, match=reason):
        PcmChunk.from_wire(body, headers, expect_rate=16_000)
