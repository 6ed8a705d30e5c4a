"""WAV files in and out of the 16-bit PCM the bus carries."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from twincast_shared.contract import AudioFormatError


def read_wav_mono16k(path: Path, *, rate: int = 16_000) -> bytes:
    """16-bit PCM mono at `rate`, mixed down and resampled if needed."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            source_rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as error:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({error})") from None
    if width != 2:
        raise AudioFormatError(f"{path}: {8 * width}-bit samples; 16-bit PCM is needed")
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).astype(np.float32)
    mono = samples.mean(axis=1)
    if source_rate != rate and mono.size:
        count = round(mono.size * rate / source_rate)
        mono = np.interp(np.linspace(0, mono.size - 1, count), np.arange(mono.size), mono).astype(
            np.float32
        )
    pcm: bytes = np.clip(mono, -32768, 32767).astype("<i2").tobytes()
    return pcm


def write_wav(path: Path, pcm: bytes, *, rate: int, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
