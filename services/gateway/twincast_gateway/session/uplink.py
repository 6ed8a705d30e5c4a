"""Barge-in at the gateway: the guest's voice on the uplink, judged frame by frame.

stt's Silero VAD needs two 32 ms windows of speech, plus its own lag, before it says
`SpeechStarted`; with the hops that is ~150 ms after the guest starts talking over the twin.
The gateway hears the same audio first, so it runs a cheap detector on each 20 ms frame the
guest sends and, on the first frame that is clearly a voice while the twin speaks, *pauses*
the twin (voice and mouth) at the next frame. Then either stt confirms the speech and the
session flushes what was queued (`LiveSession.on_speech_started`, as before), or it does
not within `hold_s` of the last voiced frame (a cough, a laugh, a door) and the twin goes
on from the sample where it stopped, nothing lost.

The detector (`VoiceGate`) wants a frame that is both loud and voiced:

- loud: its RMS is `margin_db` above an adaptive noise floor (which falls fast and rises
  slowly, by `floor_rise_db_per_s`), above `min_rms`, and above the twin's own loudest frame
  of the last half second less `echo_db` -- a browser cancels the twin's voice from the
  microphone, but what leaks through is a quieter copy of it, and must not stop the twin;
- voiced: the frame and the one before it repeat with a pitch period (normalized
  autocorrelation peak at 2.5-16 ms, i.e. 62-400 Hz, of at least `min_periodicity`). A
  click, a cough, a breath or a keyboard is loud but not periodic.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from twincast_gateway.session.media import SAMPLE_RATE, SpeechOut
from twincast_shared.contract import GUEST_SAMPLE_RATE
from twincast_shared.contract.datachannel import Ducked, Resumed

FRAME_S = 0.02
OWNER_TAG = "owner"  # LiveSession's tag on the owner's voice in SpeechOut


@dataclass(frozen=True, slots=True)
class GateSettings:
    margin_db: float = 15.0
    min_rms: float = 300.0  # PCM16; about -41 dBFS
    echo_db: float = 20.0
    floor_rise_db_per_s: float = 3.0
    min_periodicity: float = 0.6
    min_pitch_hz: float = 62.5
    max_pitch_hz: float = 400.0


class VoiceGate:
    """Says, for each 20 ms PCM16 frame of one guest's voice, whether it is someone talking."""

    def __init__(
        self, settings: GateSettings | None = None, *, rate: int = GUEST_SAMPLE_RATE
    ) -> None:
        self.settings = s = settings or GateSettings()
        self.floor = s.min_rms / 10 ** (s.margin_db / 20)
        self._rise = 10 ** (s.floor_rise_db_per_s * FRAME_S / 20)
        self._lags = (int(rate / s.max_pitch_hz), math.ceil(rate / s.min_pitch_hz))
        self._previous = np.zeros(0, dtype=np.float32)
        self.last_rms = 0.0
        self.last_periodicity = 0.0

    def threshold(self, echo_rms: float = 0.0) -> float:
        s = self.settings
        return max(
            s.min_rms,
            self.floor * 10 ** (s.margin_db / 20),
            echo_rms / 10 ** (s.echo_db / 20),
        )

    def feed(self, pcm: bytes, *, echo_rms: float = 0.0) -> bool:
        """`echo_rms`: how loud the twin itself has been lately (its echo may be in `pcm`)."""
        frame = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        if not frame.size:
            return False
        window = np.concatenate([self._previous, frame])
        self._previous = frame
        rms = float(np.sqrt(np.mean(frame * frame)))
        self.last_rms = rms
        loud = rms >= self.threshold(echo_rms)
        self.last_periodicity = periodicity(window, *self._lags) if loud else 0.0
        # The floor follows quieter frames down at once and louder ones up slowly (a talker
        # pauses often enough to pull it back down; a steady hum or fan stays in it).
        self.floor = max(1.0, min(self.floor * self._rise, max(rms, 0.5 * self.floor)))
        return loud and self.last_periodicity >= self.settings.min_periodicity


def periodicity(x: np.ndarray, min_lag: int, max_lag: int) -> float:
    """The highest normalized autocorrelation of `x` over lags min_lag..max_lag (0..1)."""
    x = x - x.mean()
    n = len(x)
    max_lag = min(max_lag, n // 2)
    if max_lag <= min_lag:
        return 0.0
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    r = np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    energy = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    lags = np.arange(min_lag, max_lag + 1)
    head = energy[n - lags]  # sum of x[0 : n - lag] ** 2
    tail = energy[n] - energy[lags]  # sum of x[lag : n] ** 2
    denominator = np.sqrt(head * tail)
    valid = denominator > 1e-9
    if not valid.any():
        return 0.0
    return float(np.max(r[lags][valid] / denominator[valid]))


class HoldingFace(Protocol):
    def hold(self, at_s: float) -> None: ...
    def resume(self, shift_s: float) -> None: ...


class BargeInGuard:
    """Pauses the twin when the guest's voice comes up while it speaks; see the module doc.

    `hear` takes each 20 ms PCM16 frame of the guest's voice (GuestAudioPump calls it).
    `notify` gets the JSON objects of `Ducked` and `Resumed` data-channel messages
    (time.monotonic() instants) for the session's clients.
    """

    def __init__(
        self,
        *,
        speech: SpeechOut,
        face: HoldingFace,
        notify: Callable[[dict[str, Any]], None] | None = None,
        settings: GateSettings | None = None,
        hold_s: float = 0.6,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._speech = speech
        self._face = face
        self._notify = notify
        self._gates: dict[str, VoiceGate] = {}
        self._settings = settings
        self.hold_s = hold_s
        self._clock = clock
        self._last_voice = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        self.ducked_at: list[float] = []
        self.resumed_at: list[float] = []

    def hear(self, pcm: bytes, *, stream: str = "") -> None:
        gate = self._gates.get(stream)
        if gate is None:
            gate = self._gates[stream] = VoiceGate(self._settings)
        voiced = gate.feed(pcm, echo_rms=self._speech.recent_rms())
        now = self._clock()
        if voiced:
            self._last_voice = now
        if self._speech.paused:
            self._expire()
        elif voiced and self._twin_speaking():
            at = self._speech.pause()
            self._face.hold(at / SAMPLE_RATE)
            self.ducked_at.append(now)
            self._tell(Ducked(at=now))
            self._arm()

    def _twin_speaking(self) -> bool:
        """The twin's voice is queued, and not the owner's: a guest talking over an owner who
        took over is two people talking, and the owner's live voice is never held back."""
        tags = self._speech.unsent()
        return bool(tags) and OWNER_TAG not in tags

    def listener(self, stream: str) -> Callable[[bytes], None]:
        """`hear` for one peer's uplink: each peer's voice has its own noise floor."""
        return lambda pcm: self.hear(pcm, stream=stream)

    def _expire(self) -> None:
        """No confirmation from stt and no voice for `hold_s`: the twin goes on."""
        if not self._speech.paused:
            return
        now = self._clock()
        if now - self._last_voice < self.hold_s:
            self._arm()
            return
        shift = self._speech.resume()
        self._face.resume(shift / SAMPLE_RATE)
        self.resumed_at.append(now)
        self._tell(Resumed(at=now))

    def forget(self, stream: str) -> None:
        """A guest's uplink ended: its voice detector goes with it."""
        self._gates.pop(stream, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven by hand (tests): `hear` checks the hold itself
            self._timer = None
            return
        delay = max(FRAME_S, self._last_voice + self.hold_s - self._clock())
        self._timer = loop.call_later(delay, self._expire)

    def _tell(self, message: Ducked | Resumed) -> None:
        if self._notify is not None:
            self._notify(message.to_dict())
