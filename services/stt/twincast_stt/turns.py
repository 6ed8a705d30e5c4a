"""When a guest starts and stops talking (a state machine over VAD probabilities), and when to
transcribe what they have said so far. Pure logic."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

WINDOW_MS = 32.0

# Words a sentence rarely ends on: a pause after them is a hesitation, not a turn end.
CONTINUATIONS = frozenset(
    """a an the and or but so because if that which who to of in on at for with from by as
    than then like my your our their his her its is are was were be been i we you they
    um uh er""".split()  # noqa: SIM905
)
_LAST_WORD = re.compile(r"([A-Za-z']+)\W*$")


class TurnSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(default=0.5, gt=0, lt=1)
    neg_threshold: float = Field(default=0.35, gt=0, lt=1)
    start_windows: int = Field(default=2, ge=1, le=10)
    silence_ms: float = Field(default=320.0, ge=64, le=3000)
    hesitation_ms: float = Field(default=800.0, ge=64, le=5000)
    preroll_ms: float = Field(default=300.0, ge=0, le=1000)
    min_speech_ms: float = Field(default=150.0, ge=0, le=2000)


def sounds_unfinished(text: str) -> bool:
    """True when a transcript stops mid-thought: on a comma, a dash or a continuation word."""
    stripped = text.rstrip()
    if not stripped:
        return False
    if stripped.endswith((",", "-", "—", "...", "…")):
        return True
    match = _LAST_WORD.search(stripped)
    return match is not None and match.group(1).lower() in CONTINUATIONS


class Phase(Enum):
    IDLE = "idle"
    SPEECH = "speech"
    TRAILING = "trailing"


class Signal(Enum):
    STARTED = "started"
    SILENCE = "silence"
    RESUMED = "resumed"
    END_DUE = "end_due"


@dataclass(frozen=True, slots=True)
class TurnSignal:
    kind: Signal
    at_window: int


class TurnTracker:
    """Feeds on one VAD probability per 32 ms window.

    STARTED after `start_windows` speech windows (the onset is dated to the first of them);
    SILENCE at the first quiet window (the moment to start transcribing the end of the turn
    speculatively); RESUMED if speech comes back; END_DUE once the silence has lasted the
    window the caller asked for (`silence_ms`, or `hesitation_ms` if the words so far sound
    unfinished).
    """

    def __init__(self, settings: TurnSettings) -> None:
        self.settings = settings
        self.phase = Phase.IDLE
        self.window = 0
        self._run = 0
        self.onset_window = 0
        self.silence_window = 0
        self.hold_ms = settings.silence_ms

    def _windows(self, ms: float) -> int:
        return max(1, round(ms / WINDOW_MS))

    def feed(self, prob: float) -> list[TurnSignal]:
        s = self.settings
        out: list[TurnSignal] = []
        here = self.window
        self.window += 1
        if self.phase is Phase.IDLE:
            self._run = self._run + 1 if prob >= s.threshold else 0
            if self._run >= s.start_windows:
                self.phase = Phase.SPEECH
                self.onset_window = here - self._run + 1
                self.hold_ms = s.silence_ms
                out.append(TurnSignal(Signal.STARTED, self.onset_window))
        elif self.phase is Phase.SPEECH:
            if prob < s.neg_threshold:
                self.phase = Phase.TRAILING
                self.silence_window = here
                out.append(TurnSignal(Signal.SILENCE, here))
        elif prob >= s.threshold:
            self.phase = Phase.SPEECH
            out.append(TurnSignal(Signal.RESUMED, here))
        elif here - self.silence_window + 1 >= self._windows(self.hold_ms):
            out.append(TurnSignal(Signal.END_DUE, here))
        return out

    def speech_ms(self) -> float:
        return WINDOW_MS * (self.silence_window - self.onset_window)

    def reset(self) -> None:
        self.phase = Phase.IDLE
        self._run = 0


class PartialPacer:
    """When to start a session's next partial transcript, on the wall clock (seconds).

    The aim is a partial out every `every_s`: after the speech onset, then after each one
    published. A transcription takes time (more as the utterance grows, and up to twice as
    long when the machine is busy), so the next one starts that long before its deadline,
    judged by the slowest of the recent ones with `headroom`; one at a time, and never before
    `min_speech_s` of speech (too little for a word).
    """

    def __init__(
        self,
        *,
        every_s: float,
        min_speech_s: float,
        recent: int = 4,
        headroom: float = 1.2,
        first_guess_s: float = 0.15,
    ) -> None:
        self.every_s = every_s
        self.min_speech_s = min_speech_s
        self.headroom = headroom
        self._first_guess = first_guess_s
        self._took: deque[float] = deque(maxlen=recent)
        self._onset = 0.0
        self._last_out = 0.0
        self._running: dict[int, float] = {}
        self._next_token = 0

    def restart(self, onset: float) -> None:
        """A new utterance whose speech began at `onset`."""
        self._onset = self._last_out = onset

    def due(self, now: float) -> bool:
        return (
            not self._running
            and now - self._onset >= self.min_speech_s
            and now + self.headroom * max(self._took, default=self._first_guess)
            >= self._last_out + self.every_s
        )

    def started(self, now: float) -> int:
        """A transcription of the utterance so far began; its token goes back to `finished`."""
        self._next_token += 1
        self._running[self._next_token] = now
        return self._next_token

    def finished(self, token: int, now: float, *, published: bool, typical: bool = True) -> None:
        """`typical`: it ran as a partial does, so its time predicts the next one's."""
        began = self._running.pop(token, None)
        if began is not None and typical:
            self._took.append(now - began)
        if published:
            self._last_out = max(self._last_out, now)
