"""The reply-playout state machine alone: no media, no peers, no bus."""

from __future__ import annotations

from twincast_gateway.session.playout import Playout, PlayoutLimits
from twincast_shared.contract import PcmChunk, ReplyChunk, Viseme, VisemeTrack


def reply(
    reply_id: str,
    *,
    provisional: bool = False,
    utterance: str | None = "u1",
    author: str = "twin",
) -> ReplyChunk:
    return ReplyChunk(
        session_id="s1",
        reply_id=reply_id,
        in_reply_to="e1",
        utterance_id=utterance,
        provisional=provisional,
        seq=0,
        text="Forty species on the roofs.",
        final=True,
        author=author,  # type: ignore[arg-type]
    )


def voice(reply_id: str, seq: int = 0, *, pcm: bytes = b"\x01\x00" * 160) -> PcmChunk:
    return PcmChunk(pcm=pcm, sample_rate=22_050, seq=seq, stream=reply_id)


def mouth(reply_id: str, seq: int = 0) -> VisemeTrack:
    return VisemeTrack(
        session_id="s1",
        reply_id=reply_id,
        seq=seq,
        sample_rate=22_050,
        visemes=(Viseme(viseme="aa", start=0, end=160),),
    )


def test_a_final_reply_is_shown_and_its_voice_played() -> None:
    playout = Playout()
    assert playout.reply(reply("r1")) == "show"
    assert playout.speech(voice("r1")) == "play"


def test_an_empty_voice_chunk_that_is_not_the_last_is_dropped() -> None:
    playout = Playout()
    assert playout.speech(voice("r1", pcm=b"")) == "drop"
    assert playout.speech(PcmChunk(pcm=b"", sample_rate=22_050, seq=1, stream="r1", last=True)) == (
        "play"
    )


def test_a_provisional_reply_waits_for_its_turn_to_end_then_comes_in_order() -> None:
    playout = Playout()
    first, sound, shape = reply("r1", provisional=True), voice("r1"), mouth("r1")
    assert playout.reply(first) == "hold"
    assert playout.speech(sound) == "hold"
    assert playout.visemes(shape) == "hold"
    assert playout.is_held("r1")
    assert playout.speech_ended("u1") == [first, sound, shape]
    assert not playout.is_held("r1")
    # Released, the same chunks now go through: the turn is over.
    assert playout.reply(first) == "show"


def test_a_provisional_reply_after_its_turn_ended_is_not_held() -> None:
    playout = Playout()
    assert playout.speech_ended("u1") == []
    assert playout.reply(reply("r1", provisional=True)) == "show"


def test_a_newer_speculation_replaces_the_older() -> None:
    playout = Playout()
    playout.reply(reply("r1", provisional=True))
    playout.reply(reply("r2", provisional=True))
    assert playout.is_cancelled("r1")
    assert playout.speech(voice("r1")) == "drop"
    released = playout.speech_ended("u1")
    assert [getattr(item, "reply_id", None) for item in released] == ["r2"]


def test_a_final_answer_with_other_words_cuts_the_released_speculation() -> None:
    playout = Playout()
    playout.reply(reply("r1", provisional=True))
    playout.speech_ended("u1")
    assert playout.reply(reply("r1", provisional=True)) == "show"
    assert playout.reply(reply("r2")) == "cut_and_show"
    assert playout.is_cancelled("r1")
    assert playout.speech(voice("r1", 1)) == "drop"
    assert playout.speech(voice("r2")) == "play"


def test_the_final_answer_that_matches_the_speculation_goes_on() -> None:
    playout = Playout()
    playout.reply(reply("r1", provisional=True))
    playout.speech_ended("u1")
    assert playout.reply(reply("r1")) == "show"
    assert not playout.is_cancelled("r1")


def test_a_final_answer_drops_a_speculation_still_held() -> None:
    playout = Playout()
    playout.reply(reply("r1", provisional=True))
    assert playout.reply(reply("r2")) == "show"
    assert playout.is_cancelled("r1")
    assert playout.speech_ended("u1") == []


def test_a_barge_in_cuts_what_was_heard_and_held() -> None:
    playout = Playout()
    playout.reply(reply("r1", utterance=None))
    playout.speech(voice("r1"))
    playout.reply(reply("r2", provisional=True, utterance="u2"))
    playout.cut()
    assert playout.is_cancelled("r1")
    assert playout.is_cancelled("r2")
    assert playout.speech(voice("r1", 1)) == "drop"
    assert playout.visemes(mouth("r1", 1)) == "drop"
    assert playout.speech_ended("u2") == []
    assert playout.sizes["placed"] == playout.sizes["waiting"] == playout.sizes["held"] == 0


def test_a_twin_answer_that_crosses_the_owners_takeover_is_dropped() -> None:
    playout = Playout()
    assert playout.reply(reply("r1"), floor_held=True) == "drop"
    assert playout.is_cancelled("r1")
    assert playout.reply(reply("o1", author="owner"), floor_held=True) == "show"


def test_the_guest_over_the_owner_cancels_the_twin_but_keeps_listening() -> None:
    playout = Playout()
    playout.reply(reply("r1"))
    playout.cancel_heard()
    assert playout.is_cancelled("r1")
    assert playout.reply(reply("r2")) == "show"


def test_voice_and_mouth_meet_whichever_comes_first() -> None:
    playout = Playout()
    playout.reply(reply("r1"))
    # Voice first: the mouth finds where it was placed.
    assert playout.speech(voice("r1", 0)) == "play"
    assert playout.placed(voice("r1", 0), 4_800) is None
    assert playout.visemes(mouth("r1", 0)) == 4_800
    # Mouth first: it waits, and comes back with its voice.
    track = mouth("r1", 1)
    assert playout.visemes(track) == "wait"
    assert playout.placed(voice("r1", 1), 9_600) is track
    assert playout.sizes["placed"] == playout.sizes["waiting"] == 0


def test_memory_is_bounded_however_long_the_session() -> None:
    limits = PlayoutLimits(replies=16, utterances=4, chunks=8, held_replies=2, held_items=5)
    playout = Playout(limits)
    for n in range(500):
        rid, utterance = f"r{n}", f"u{n}"
        playout.reply(reply(rid, utterance=utterance))
        playout.speech(voice(rid))
        playout.placed(voice(rid), n)  # a voice whose mouth never comes
        playout.visemes(mouth(rid, 1))  # a mouth whose voice never comes
        playout.reply(reply(f"p{n}", provisional=True, utterance=f"x{n}"))
        playout.speech_ended(utterance)
        if n % 3 == 0:
            playout.cut()
    sizes = playout.sizes
    assert sizes["heard"] <= 16
    assert sizes["cancelled"] <= 16
    assert sizes["ended"] <= 4
    assert sizes["released"] <= 4
    assert sizes["placed"] <= 8
    assert sizes["waiting"] <= 8
    assert sizes["held"] <= 2


def test_a_held_reply_past_its_cap_is_dropped_whole() -> None:
    playout = Playout(PlayoutLimits(held_items=3))
    playout.reply(reply("r1", provisional=True))
    assert [playout.speech(voice("r1", seq)) for seq in range(3)] == ["hold", "hold", "drop"]
    assert playout.is_cancelled("r1")
    assert playout.speech_ended("u1") == []


def test_too_many_held_replies_cancel_the_oldest() -> None:
    playout = Playout(PlayoutLimits(held_replies=2))
    for n in range(3):
        playout.reply(reply(f"r{n}", provisional=True, utterance=f"u{n}"))
    assert playout.is_cancelled("r0")
    assert playout.is_held("r1")
    assert playout.is_held("r2")
