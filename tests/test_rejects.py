"""Bad input on any service's input subject gives a Rejected event; the next good one is served."""

from __future__ import annotations

import asyncio
import base64
import json
from uuid import uuid4

import nats.aio.client
import nats.errors
import pytest
from nats.js.api import DeliverPolicy

from tests.conftest import Stack
from twincast_shared.contract import (
    GuestTextSubmitted,
    Interrupt,
    PcmChunk,
    Rejected,
    ReplyChunk,
    UtteranceTranscribed,
)
from twincast_shared.contract import subjects as s
from twincast_shared.sessions import SessionInfo, open_session
from twincast_shared.store import StateStore

JSON = {"content-type": "application/json"}


async def rejected_by(
    nc: nats.aio.client.Client, service: str, subject: str, body: bytes, **kw: object
) -> Rejected:
    sub = await nc.subscribe(s.REJECTED.of(service))
    try:
        await nc.publish(subject, body, **kw)  # type: ignore[arg-type]
        msg = await sub.next_msg(timeout=5)
        return Rejected.model_validate_json(msg.data)
    finally:
        await sub.unsubscribe()


def sid() -> str:
    return uuid4().hex


async def opened(store: StateStore) -> str:
    session = sid()
    await open_session(store, SessionInfo(session_id=session, twin_id="juniper"))
    return session


MALFORMED = [
    pytest.param(b"{not json", ("invalid json",), id="not-json"),
    pytest.param(b'{"type": "guest_text"}', ("session_id", "does not match"), id="missing-fields"),
    pytest.param(b"[1, 2, 3]", ("should be an object", "tag"), id="wrong-shape"),
]


@pytest.mark.parametrize(("body", "reason"), MALFORMED)
@pytest.mark.parametrize(
    ("service", "family"),
    [
        ("reasoning", s.TEXT_IN),
        ("reasoning", s.STT_FINAL),
        ("mood", s.STT_FINAL),
        ("mood", s.TEXT_IN),
        ("tts", s.REPLY),
        ("tts", s.MOOD),
        ("tts", s.CONTROL),
    ],
)
async def test_malformed_event_is_rejected(
    stack: Stack,
    nc: nats.aio.client.Client,
    service: str,
    family: s.Subject,
    body: bytes,
    reason: tuple[str, ...],
) -> None:
    session = sid()
    subject = family.of(session)
    rejected = await rejected_by(nc, service, subject, body, headers=JSON)
    assert rejected.service == service
    assert rejected.subject == subject
    assert rejected.session_id == session
    assert any(r in rejected.reason.lower() for r in reason), rejected.reason
    assert base64.b64decode(rejected.payload_b64) == body
    assert rejected.payload_bytes == len(body)


async def test_event_for_another_session_is_rejected(
    stack: Stack, nc: nats.aio.client.Client
) -> None:
    event = GuestTextSubmitted(session_id="someone-else", text="Hello?")
    subject = s.TEXT_IN.of(sid())
    rejected = await rejected_by(nc, "reasoning", subject, event.model_dump_json().encode())
    assert "does not match the subject" in rejected.reason


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({"tc-format": "pcm_s16le"}, b"\x00" * 640, "missing header"),
        (None, b"\x00" * 641, "whole number"),
        ("rate", b"\x00" * 640, "sample rate 8000"),
    ],
    ids=["no-headers", "odd-bytes", "wrong-rate"],
)
async def test_bad_audio_is_rejected_and_the_next_good_utterance_is_served(
    stack: Stack,
    nc: nats.aio.client.Client,
    store: StateStore,
    headers: dict[str, str] | str | None,
    body: bytes,
    reason: str,
) -> None:
    session = await opened(store)
    good = PcmChunk(pcm=b"\x00" * 640, sample_rate=16_000, seq=0, stream="u1")
    if headers is None:
        headers = good.headers()
    elif headers == "rate":
        headers = PcmChunk(pcm=b"", sample_rate=8_000, seq=0, stream="u1").headers()
    assert isinstance(headers, dict)
    rejected = await rejected_by(nc, "stt", s.AUDIO_IN.of(session), body, headers=headers)
    assert reason in rejected.reason
    assert rejected.session_id == session

    finals = await nc.subscribe(s.STT_FINAL.of(session))
    last = PcmChunk(pcm=b"\x00" * 640, sample_rate=16_000, seq=1, stream="u1", last=True)
    for chunk in (good, last):
        await nc.publish(s.AUDIO_IN.of(session), chunk.pcm, headers=chunk.headers())
    final = UtteranceTranscribed.model_validate_json((await finals.next_msg(timeout=30)).data)
    assert final.text == ""  # silence: served, and honestly empty
    await finals.unsubscribe()


async def test_reasoning_answers_after_bad_input(stack: Stack, nc: nats.aio.client.Client) -> None:
    session = sid()
    await rejected_by(nc, "reasoning", s.TEXT_IN.of(session), b"garbage", headers=JSON)
    replies = await nc.subscribe(s.REPLY.of(session))
    question = GuestTextSubmitted(session_id=session, text="What should I plant on my balcony?")
    await nc.publish(s.TEXT_IN.of(session), question.model_dump_json().encode(), headers=JSON)
    chunk = ReplyChunk.model_validate_json((await replies.next_msg(timeout=10)).data)
    assert chunk.in_reply_to == question.event_id
    await replies.unsubscribe()


async def test_mood_answers_after_bad_input(stack: Stack, nc: nats.aio.client.Client) -> None:
    session = sid()
    await rejected_by(nc, "mood", s.STT_FINAL.of(session), b"{}", headers=JSON)
    moods = await nc.subscribe(s.MOOD.of(session))
    words = UtteranceTranscribed(
        session_id=session, utterance_id="u", text="This is wonderful, thank you!", final=True
    )
    await nc.publish(s.STT_FINAL.of(session), words.model_dump_json().encode(), headers=JSON)
    mood = json.loads((await moods.next_msg(timeout=10)).data)
    assert mood["source_event_id"] == words.event_id
    assert mood["valence"] > 0.3
    await moods.unsubscribe()


async def test_tts_speaks_after_bad_input_and_stops_on_interrupt(
    stack: Stack, nc: nats.aio.client.Client
) -> None:
    session = sid()
    await rejected_by(nc, "tts", s.REPLY.of(session), b'{"type":"reply_chunk"}', headers=JSON)
    audio = await nc.subscribe(s.TTS_AUDIO.of(session))
    chunk = ReplyChunk(
        session_id=session, reply_id="r1", in_reply_to="q1", seq=0, text="Hello there.", final=True
    )
    await nc.publish(s.REPLY.of(session), chunk.model_dump_json().encode(), headers=JSON)
    # The reply streams in chunks; all of it is spoken, the last chunk closing it.
    spoken: list[PcmChunk] = []
    while not (spoken and spoken[-1].last):
        msg = await audio.next_msg(timeout=10)
        spoken.append(PcmChunk.from_wire(msg.data, msg.headers or {}))
    assert {c.stream for c in spoken} == {"r1"}
    assert sum(c.duration_ms for c in spoken) > 300

    long_reply = [
        ReplyChunk(
            session_id=session,
            reply_id="r2",
            in_reply_to="q2",
            seq=i,
            text=f"This is sentence number {i} of a long answer about rooftop bees.",
            final=i == 9,
        )
        for i in range(10)
    ]
    for part in long_reply:
        await nc.publish(s.REPLY.of(session), part.model_dump_json().encode(), headers=JSON)
    first = await audio.next_msg(timeout=10)
    assert PcmChunk.from_wire(first.data, first.headers or {}).stream == "r2"
    stop = Interrupt(session_id=session)
    await nc.publish(s.CONTROL.of(session), stop.model_dump_json().encode(), headers=JSON)
    heard = 1
    while True:
        try:
            await audio.next_msg(timeout=1.5)
        except nats.errors.TimeoutError:
            break
        heard += 1
    assert heard < 10, "synthesis went on after Interrupt"
    await audio.unsubscribe()


async def test_dead_letters_are_kept_when_nobody_is_listening(
    stack: Stack, nc: nats.aio.client.Client
) -> None:
    session = sid()
    await nc.publish(s.TEXT_IN.of(session), b"lost?", headers=JSON)
    js = nc.jetstream()
    sub = await js.subscribe(
        s.REJECTED.of("reasoning"), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    try:
        while True:
            msg = await sub.next_msg(timeout=5)
            rejected = Rejected.model_validate_json(msg.data)
            if rejected.session_id == session:
                break
    finally:
        await sub.unsubscribe()
    assert base64.b64decode(rejected.payload_b64) == b"lost?"


async def test_audio_for_an_unknown_session_is_rejected(
    stack: Stack, nc: nats.aio.client.Client
) -> None:
    chunk = PcmChunk(pcm=b"\x00" * 640, sample_rate=16_000, seq=0, stream="u1")
    rejected = await rejected_by(
        nc, "stt", s.AUDIO_IN.of(sid()), chunk.pcm, headers=chunk.headers()
    )
    assert "unknown session" in rejected.reason


async def test_an_audio_flood_is_rejected_and_the_session_goes_on(
    stack: Stack, nc: nats.aio.client.Client, store: StateStore
) -> None:
    session = await opened(store)
    second = 16_000 * 2
    rejections = await nc.subscribe(s.REJECTED.of("stt"))
    for seq in range(30):  # 30 s of audio at once: beyond the 20 s burst allowance
        chunk = PcmChunk(pcm=b"\x00" * second, sample_rate=16_000, seq=seq, stream="u1")
        await nc.publish(s.AUDIO_IN.of(session), chunk.pcm, headers=chunk.headers())
    flood = Rejected.model_validate_json((await rejections.next_msg(timeout=10)).data)
    assert flood.session_id == session
    assert "flood" in flood.reason
    await rejections.unsubscribe()

    finals = await nc.subscribe(s.STT_FINAL.of(session))
    last = PcmChunk(pcm=b"\x00" * 640, sample_rate=16_000, seq=99, stream="u1", last=True)
    await asyncio.sleep(1.0)  # the allowance refills at 1.25 s of audio per second
    await nc.publish(s.AUDIO_IN.of(session), last.pcm, headers=last.headers())
    final = UtteranceTranscribed.model_validate_json((await finals.next_msg(timeout=30)).data)
    assert final.text == ""
    await finals.unsubscribe()
