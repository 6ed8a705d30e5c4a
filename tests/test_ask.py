"""The first conversation over the real bus: speech or text in; transcript, answer, speech out."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from tests.conftest import SPEECH, Stack
from twincast.client import TurnFailed, ask
from twincast_shared.contract import AudioFormatError
from twincast_testkit.wer import wer


async def test_spoken_question_is_transcribed_answered_and_spoken(
    stack: Stack, tmp_path: Path, speech_files: dict[str, str]
) -> None:
    out = tmp_path / "reply.wav"
    result = await ask(stack.settings, audio=SPEECH / "arctic_a0009.wav", out_wav=out, timeout_s=60)
    assert wer(speech_files["arctic_a0009.wav"], result.transcript) <= 0.2, result.transcript
    assert result.reply
    # Nothing in Juniper's writing is about Gregson: the twin must defer, not make things up.
    assert result.deferred
    assert "pass" in result.reply.lower()
    assert result.reply_wav == str(out)
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 22_050
        seconds = wav.getnframes() / wav.getframerate()
    assert seconds > 1.0
    assert {"stt", "reasoning", "tts_first_audio", "first_audio", "reply_complete"} <= set(
        result.timings_ms
    )


async def test_typed_question_is_answered_from_the_corpus_with_a_source(
    stack: Stack, tmp_path: Path
) -> None:
    result = await ask(
        stack.settings,
        text="How many species of bees did you find on the rooftops?",
        out_wav=tmp_path / "r.wav",
    )
    assert not result.deferred
    assert "species" in result.reply
    assert result.citations
    assert result.citations[0].source_id == "why-rooftop-bees-need-weeds.md"
    assert result.citations[0].date == "2023-05-14"


async def test_first_turn_says_it_is_an_ai_twin(stack: Stack, tmp_path: Path) -> None:
    result = await ask(stack.settings, text="What should I plant on my balcony?")
    assert result.reply.startswith("Hi, I'm Juniper Hale's AI twin.")


async def test_public_guest_does_not_hear_private_notes(stack: Stack) -> None:
    result = await ask(
        stack.settings, text="Tell me about the job offer from the Saltmarsh Field Station."
    )
    assert result.deferred
    assert "Kestrel Bay" not in result.reply
    private = await ask(
        stack.settings,
        text="Tell me about the job offer from the Saltmarsh Field Station.",
        scope="private",
    )
    assert not private.deferred
    assert private.citations[0].source_id == "private-the-coast-job.md"


async def test_silence_is_reported_not_answered(stack: Stack, tmp_path: Path) -> None:
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(b"\x00\x00" * 16_000)
    with pytest.raises(TurnFailed, match="no speech"):
        await ask(stack.settings, audio=silent, timeout_s=30)


async def test_unreadable_audio_file_is_a_clear_error(stack: Stack, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"this is not audio")
    with pytest.raises(AudioFormatError, match="not a PCM WAV"):
        await ask(stack.settings, audio=bogus)
