"""A live session's speech queue: provisional answers wait for the end of the turn."""

from __future__ import annotations

import numpy as np
import pytest
from aiortc import RTCConfiguration

from twincast.runtime import EXAMPLES
from twincast_gateway.avatar import FaceRig, Portrait, PortraitRenderer
from twincast_gateway.avatar.faces import FACE_DIR, PORTRAIT_FILE, PortraitFace
from twincast_gateway.session.live import LiveSession
from twincast_shared.contract import PcmChunk, ReplyChunk, Viseme, VisemeTrack
from twincast_shared.sessions import SessionInfo

RATE = 22_050


async def _nothing(*_: object) -> None:
    return None


@pytest.fixture(scope="module")
def rig() -> FaceRig:
    return FaceRig.build(Portrait.load(EXAMPLES / "juniper" / FACE_DIR / PORTRAIT_FILE))


@pytest.fixture
def session(rig: FaceRig) -> LiveSession:
    return LiveSession(
        info=SessionInfo(session_id="s1", twin_id="juniper"),
        face=PortraitFace(renderer=PortraitRenderer(rig=rig), seed=1),
        fps=25,
        rtc=RTCConfiguration(iceServers=[]),
        publish_audio=_nothing,
        publish_text=_nothing,
        publish_animation=_nothing,
        on_empty=_nothing,
    )


def reply(reply_id: str, *, provisional: bool, utterance: str = "u1") -> ReplyChunk:
    return ReplyChunk(
        session_id="s1",
        reply_id=reply_id,
        in_reply_to="e1",
        utterance_id=utterance,
        provisional=provisional,
        seq=0,
        text="The rooftops had forty species.",
        final=True,
    )


def audio(reply_id: str) -> PcmChunk:
    return PcmChunk(pcm=b"\x10\x10" * (RATE // 2), sample_rate=RATE, seq=0, stream=reply_id)


def visemes(reply_id: str) -> VisemeTrack:
    return VisemeTrack(
        session_id="s1",
        reply_id=reply_id,
        seq=0,
        sample_rate=RATE,
        visemes=(Viseme(viseme="aa", start=0, end=RATE // 2),),
    )


def test_provisional_answer_is_silent_until_the_turn_ends(session: LiveSession) -> None:
    session.on_reply(reply("r1", provisional=True))
    session.on_visemes(visemes("r1"))
    session.on_speech(audio("r1"))
    assert not session.speech.speaking
    session.on_speech_ended("u1")
    assert session.speech.speaking
    _frame, animation = session._face.frame(
        session.speech.queued_until / 48_000 - 0.25, 0, session_id="s1"
    )
    assert animation.mouth_open > 0.2


def test_provisional_answer_to_other_words_is_dropped(session: LiveSession) -> None:
    session.on_reply(reply("r1", provisional=True))
    session.on_speech(audio("r1"))
    session.on_reply(reply("r2", provisional=False))
    session.on_speech(audio("r2"))
    session.on_speech_ended("u1")
    assert session.speech.speaking
    assert abs(session.speech.flush() - len(audio("r2").pcm) // 2 * 48_000 // RATE) < 64


def test_barge_in_drops_held_answers_too(session: LiveSession) -> None:
    session.on_reply(reply("r1", provisional=True))
    session.on_speech(audio("r1"))
    session.on_speech_started()
    session.on_speech_ended("u1")
    session.on_speech(audio("r1"))
    assert not session.speech.speaking


def test_a_provisional_answer_after_its_turn_ended_plays_at_once(session: LiveSession) -> None:
    session.on_speech_ended("u1")
    session.on_reply(reply("r1", provisional=True))
    session.on_speech(audio("r1"))
    assert session.speech.speaking


def test_a_newer_speculation_replaces_the_held_one(session: LiveSession) -> None:
    session.on_reply(reply("r1", provisional=True))
    session.on_speech(audio("r1"))
    session.on_reply(reply("r2", provisional=True))
    session.on_speech(audio("r2"))
    session.on_speech_ended("u1")
    assert abs(session.speech.flush() - len(audio("r2").pcm) // 2 * 48_000 // RATE) < 64


def test_a_reply_in_chunks_sounds_like_the_reply_in_one_piece() -> None:
    from twincast_gateway.session.media import StreamResampler

    tone = (8000 * np.sin(np.arange(RATE) * 2 * np.pi * 440 / RATE)).astype("<i2")
    whole = StreamResampler().convert("a", tone.tobytes(), RATE, last=True)
    streams = StreamResampler()
    parts = [tone[:3001], tone[3001:9000], tone[9000:]]
    joined = np.concatenate(
        [
            streams.convert("b", part.tobytes(), RATE, last=i == len(parts) - 1)
            for i, part in enumerate(parts)
        ]
    )
    assert len(joined) == len(whole)
    assert np.max(np.abs(joined.astype(int) - whole.astype(int))) <= 2
