from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from twincast.audio_io import read_wav_mono16k, write_wav
from twincast_shared.contract import AudioFormatError
from twincast_shared.settings import CommonSettings
from twincast_stt.settings import SttSettings
from twincast_testkit.wer import wer


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINCAST_NATS_URL", "nats://10.0.0.5:4222")
    monkeypatch.setenv("TWINCAST_STT_BEAM_SIZE", "2")
    assert SttSettings().nats_url == "nats://10.0.0.5:4222"
    assert SttSettings().stt_beam_size == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nats_url", "http://localhost:4222"),
        ("redis_url", "localhost:6379"),
        ("twin", "a.b"),
        ("log_level", "LOUD"),
    ],
)
def test_invalid_settings_fail_at_start(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        CommonSettings(**{field: value})


def test_invalid_service_settings_fail_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINCAST_STT_BEAM_SIZE", "0")
    with pytest.raises(ValidationError, match="stt_beam_size"):
        SttSettings()


def test_wav_is_mixed_down_and_resampled(tmp_path: Path) -> None:
    t = np.arange(44_100) / 44_100
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    stereo = np.stack([tone, tone], axis=1).tobytes()
    path = tmp_path / "tone.wav"
    write_wav(path, stereo, rate=44_100, channels=2)
    pcm = read_wav_mono16k(path)
    samples = np.frombuffer(pcm, dtype="<i2")
    assert samples.size == 16_000
    assert 7000 < np.abs(samples).max() <= 8000


def test_8_bit_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * 800)
    with pytest.raises(AudioFormatError, match="8-bit"):
        read_wav_mono16k(path)


def test_word_error_rate() -> None:
    assert wer("He turned sharply, and faced Gregson.", "he turned sharply and faced gregson") == 0
    assert wer("a b c d", "a x c") == 0.5
    assert wer("", "") == 0.0
