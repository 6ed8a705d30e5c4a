"""When the face does what: mouth from the viseme track, blinks, breathing, head motion, mood.

Pure timing logic, no pixels. `Animator.state(t_s)` is meant to be called once per video frame
with non-decreasing times on the session's media clock (the clock that stamps its audio and
video); the mouth is a function of the scheduled visemes alone, while blinks, head motion and
mood transitions advance with the calls, so a given seed and call sequence always gives the
same faces.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from twincast_shared.contract import AnimationFrame, HeadPose, VisemeTrack

Speaker = Literal["twin", "owner", "none"]
VisemeSpan = tuple[str, float, float]

SILENCE: Final = "sil"
EXPRESSIONS: Final = ("neutral", "happy", "calm", "concerned", "curious", "surprised", "sad")


@dataclass(frozen=True, slots=True)
class MouthShape:
    """How far the jaw drops (0..1) and the lips' width (-1 rounded .. +1 spread)."""

    open: float
    width: float


# The 15 visemes of the tts service (twincast_tts.visemes), each a mouth target.
VISEME_SHAPES: Final[Mapping[str, MouthShape]] = MappingProxyType(
    {
        SILENCE: MouthShape(0.0, 0.0),
        "PP": MouthShape(0.0, -0.15),
        "FF": MouthShape(0.1, 0.15),
        "TH": MouthShape(0.18, 0.1),
        "DD": MouthShape(0.28, 0.15),
        "kk": MouthShape(0.32, 0.05),
        "CH": MouthShape(0.3, -0.55),
        "SS": MouthShape(0.14, 0.45),
        "nn": MouthShape(0.22, 0.1),
        "RR": MouthShape(0.28, -0.45),
        "aa": MouthShape(0.95, 0.15),
        "E": MouthShape(0.6, 0.45),
        "ih": MouthShape(0.42, 0.6),
        "oh": MouthShape(0.7, -0.65),
        "ou": MouthShape(0.38, -0.95),
    }
)
_UNKNOWN_SHAPE: Final = MouthShape(0.25, 0.0)

# Guest mood labels (the mood service's and common synonyms) to the twin's expression.
MOOD_EXPRESSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "excited": "happy",
        "pleased": "happy",
        "happy": "happy",
        "joy": "happy",
        "amused": "happy",
        "upset": "concerned",
        "angry": "concerned",
        "worried": "concerned",
        "anxious": "concerned",
        "concerned": "concerned",
        "sad": "concerned",
        "neutral": "calm",
        "calm": "calm",
        "relaxed": "calm",
        "curious": "curious",
        "interested": "curious",
        "confused": "curious",
        "surprised": "surprised",
    }
)

COARTICULATION_S: Final = 0.06  # half-width of the triangular blend between mouth targets
# The first open viseme after a pause opens the mouth fully by its start, rising smoothly over
# this long before it, instead of half open there and fully 60 ms later (the blend's way).
ATTACK_S: Final = 0.06
_OPEN_VISEME: Final = 0.3  # a viseme that visibly opens the mouth (vowels)
_PAUSE_S: Final = 0.15  # no open viseme for this long: the next one starts speech anew
_ENVELOPE_S: Final = 0.25  # half-width of the slow speech envelope that drives emphasis nods
_KEEP_S: Final = 1.0  # how long spoken segments are kept behind the clock
_MAX_STEP_S: Final = 0.25


@dataclass(frozen=True, slots=True)
class Head:
    """Head rotation in degrees: yaw to the image's right, pitch up, roll clockwise."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0


@dataclass(frozen=True, slots=True)
class FaceState:
    """The face at one instant: the contract's `AnimationFrame` fields plus `mouth_width`."""

    t_s: float
    speaker: Speaker = "none"
    viseme: str = SILENCE
    mouth_open: float = 0.0
    mouth_width: float = 0.0
    expression: str = "neutral"
    expression_weight: float = 0.0
    blink: float = 0.0
    head: Head = field(default_factory=Head)
    energy: float = 0.5

    def to_animation_frame(self, *, session_id: str) -> AnimationFrame:
        """This state as the contract event for clients that animate their own model."""
        return AnimationFrame(
            session_id=session_id,
            t_ms=max(0.0, self.t_s * 1000.0),
            speaker=self.speaker,
            viseme=self.viseme[:16] or SILENCE,
            mouth_open=_clip01(self.mouth_open),
            expression=self.expression[:32] or "neutral",
            expression_weight=_clip01(self.expression_weight),
            blink=_clip01(self.blink),
            head=HeadPose(
                yaw=_clip(self.head.yaw, -45.0, 45.0),
                pitch=_clip(self.head.pitch, -45.0, 45.0),
                roll=_clip(self.head.roll, -45.0, 45.0),
            ),
            energy=_clip01(self.energy),
        )


def visemes_from_track(track: VisemeTrack) -> list[VisemeSpan]:
    """A tts `VisemeTrack` (sample offsets) as spans in seconds from the start of its audio."""
    rate = float(track.sample_rate)
    return [(v.viseme, v.start / rate, v.end / rate) for v in track.visemes]


def expression_for(label: str, valence: float, arousal: float) -> str:
    """The twin's expression for a mood label, from valence and arousal when the label is new."""
    key = label.strip().lower()
    if key in EXPRESSIONS:
        return key
    if key in MOOD_EXPRESSIONS:
        return MOOD_EXPRESSIONS[key]
    if valence > 0.25:
        return "happy"
    if valence < -0.25:
        return "concerned"
    return "curious" if arousal > 0.4 else "calm"


@dataclass(slots=True)
class _Wave:
    """Smooth pseudo-random motion: a few incommensurate sines with seeded phases."""

    freqs: tuple[float, ...]
    amps: tuple[float, ...]
    phases: list[float]

    @classmethod
    def seeded(cls, rng: random.Random, *, low_hz: float, high_hz: float, parts: int) -> _Wave:
        freqs = tuple(rng.uniform(low_hz, high_hz) for _ in range(parts))
        raw = tuple(1.0 / (1 + k) for k in range(parts))
        norm = math.sqrt(sum(a * a for a in raw) / 2)
        return cls(
            freqs=freqs,
            amps=tuple(a / norm for a in raw),
            phases=[rng.uniform(0, math.tau) for _ in range(parts)],
        )

    def advance(self, dt: float, tempo: float) -> None:
        for k, f in enumerate(self.freqs):
            self.phases[k] = (self.phases[k] + math.tau * f * dt * tempo) % math.tau

    def value(self) -> float:
        """About unit RMS, bounded by the sum of the amplitudes."""
        return sum(a * math.sin(p) for a, p in zip(self.amps, self.phases, strict=True))


class Animator:
    """The face's timeline for one session: `speak`, `flush`, `set_mood`, `set_energy`, `state`."""

    def __init__(self, *, seed: int = 0, energy: float = 0.6) -> None:
        self._rng = random.Random(seed)
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._names: list[str] = []
        self._speakers: list[Speaker] = []
        self._cut_s = -math.inf
        self._held_at: float | None = None
        self._held: list[tuple[float, float, str, Speaker]] = []
        self._t: float | None = None

        self._energy_target = _clip01(energy)
        self._energy = self._energy_target
        self._speaking = 0.0

        self._expr_target = "neutral"
        self._expr_target_weight = 0.0
        self._expr = "neutral"
        self._expr_weight = 0.0

        self._yaw = _Wave.seeded(self._rng, low_hz=0.05, high_hz=0.3, parts=3)
        self._pitch = _Wave.seeded(self._rng, low_hz=0.07, high_hz=0.35, parts=3)
        self._roll = _Wave.seeded(self._rng, low_hz=0.04, high_hz=0.2, parts=2)
        self._breath_phase = self._rng.uniform(0, math.tau)

        self._blink_start = -math.inf
        self._blink_len = 0.15
        self._next_blink: float | None = None
        self._nod_start = -math.inf
        self._next_nod: float | None = None

    # -- inputs ---------------------------------------------------------------------------

    def speak(
        self, visemes: Iterable[VisemeSpan], start_s: float, *, speaker: Speaker = "twin"
    ) -> None:
        """Schedule mouth shapes: spans in seconds from `start_s`, the audio's media-clock start."""
        if not math.isfinite(start_s):
            raise ValueError("start_s must be finite")
        for name, rel_start, rel_end in visemes:
            if not (math.isfinite(rel_start) and math.isfinite(rel_end)):
                raise ValueError(f"viseme {name!r} has a non-finite time")
            start = start_s + max(0.0, rel_start)
            end = start_s + rel_end
            if end <= start or end <= self._cut_s:
                continue
            start = max(start, self._cut_s)
            if self._held_at is not None:
                self._held.append((start, end, name, speaker))
            else:
                self._insert(start, end, name, speaker)

    def _insert(self, start: float, end: float, name: str, speaker: Speaker) -> None:
        i = bisect.bisect_right(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, end)
        self._names.insert(i, name)
        self._speakers.insert(i, speaker)

    def flush(self, at_s: float) -> int:
        """Barge-in: drop every mouth shape after `at_s`; from `at_s` the mouth is closed.

        Returns how many scheduled spans were dropped or cut short (held ones included).
        """
        self._cut_s = max(self._cut_s, at_s)
        dropped = len(self._held)
        self._held.clear()
        self._held_at = None
        keep = bisect.bisect_left(self._starts, at_s)
        dropped += len(self._starts) - keep
        del self._starts[keep:], self._ends[keep:], self._names[keep:], self._speakers[keep:]
        for i, end in enumerate(self._ends):
            if end > at_s:
                self._ends[i] = at_s
                dropped += 1
        return dropped

    def hold(self, at_s: float) -> None:
        """The voice pauses at `at_s` (the guest may be talking over the twin): from then the
        mouth is closed, and what it would have said waits for `resume` (or goes on `flush`)."""
        if self._held_at is not None:
            return
        self._held_at = at_s
        keep = bisect.bisect_left(self._starts, at_s)
        held = list(
            zip(
                self._starts[keep:],
                self._ends[keep:],
                self._names[keep:],
                self._speakers[keep:],
                strict=True,
            )
        )
        del self._starts[keep:], self._ends[keep:], self._names[keep:], self._speakers[keep:]
        for i, end in enumerate(self._ends):
            if end > at_s:
                held.append((at_s, end, self._names[i], self._speakers[i]))
                self._ends[i] = at_s
        self._held = sorted(held)
        self._cut_s = max(self._cut_s, at_s)

    def resume(self, shift_s: float) -> None:
        """The paused voice plays on, `shift_s` later than planned: so does the mouth."""
        if self._held_at is None:
            return
        self._held_at = None
        for start, end, name, speaker in self._held:
            self._insert(start + shift_s, end + shift_s, name, speaker)
        self._held.clear()

    def set_mood(
        self, label: str, valence: float, arousal: float, *, intensity: float | None = None
    ) -> None:
        """Show the expression that fits this mood; intensity from valence/arousal if not given."""
        weight = (
            0.3 + 0.7 * max(abs(valence), 0.6 * abs(arousal)) if intensity is None else intensity
        )
        self.set_expression(expression_for(label, valence, arousal), _clip01(weight))

    def set_expression(self, name: str, weight: float) -> None:
        """Show one of `EXPRESSIONS` (others are read as mood labels) at `weight` 0..1."""
        self._expr_target = expression_for(name, 0.0, 0.0)
        self._expr_target_weight = 0.0 if self._expr_target == "neutral" else _clip01(weight)

    def set_energy(self, energy: float) -> None:
        """The owner's energy 0..1: livelier, brighter-eyed when high, slower when tired."""
        self._energy_target = _clip01(energy)

    # -- output ---------------------------------------------------------------------------

    def scheduled_until(self) -> float:
        """Media-clock time the last scheduled mouth shape ends (-inf when none)."""
        return max(self._ends, default=-math.inf)

    def state(self, t_s: float) -> FaceState:
        """The face at media-clock time `t_s` (call with non-decreasing times)."""
        dt = 0.0 if self._t is None else _clip(t_s - self._t, 0.0, _MAX_STEP_S)
        self._t = t_s if self._t is None else max(self._t, t_s)
        viseme, speaker, shape = self._mouth(t_s)
        self._advance(dt, speaking=speaker != "none")
        energy = self._energy
        weight = self._expr_weight
        articulation = 0.8 + 0.35 * energy
        rest_open = 0.12 * weight if self._expr == "surprised" else 0.0
        mouth_open = max(rest_open, shape.open * articulation)
        state = FaceState(
            t_s=t_s,
            speaker=speaker,
            viseme=viseme,
            mouth_open=_clip01(mouth_open),
            mouth_width=_clip(shape.width, -1.0, 1.0),
            expression=self._expr,
            expression_weight=weight,
            blink=self._blink(t_s),
            head=self._head(t_s),
            energy=energy,
        )
        self._prune(t_s - _KEEP_S)
        return state

    # -- internals ------------------------------------------------------------------------

    def _advance(self, dt: float, *, speaking: bool) -> None:
        self._energy += (self._energy_target - self._energy) * (1 - math.exp(-dt / 1.5))
        target = 1.0 if speaking else 0.0
        self._speaking += (target - self._speaking) * (1 - math.exp(-dt / 0.3))
        if self._expr != self._expr_target:
            self._expr_weight = max(0.0, self._expr_weight - dt / 0.25)
            if self._expr_weight <= 0.02:
                self._expr, self._expr_weight = self._expr_target, 0.0
        else:
            gap = self._expr_target_weight - self._expr_weight
            self._expr_weight += gap * (1 - math.exp(-dt / 0.35))
        tempo = 0.7 + 0.6 * self._energy + 0.4 * self._speaking
        for wave in (self._yaw, self._pitch, self._roll):
            wave.advance(dt, tempo)
        breath_hz = 0.2 + 0.1 * self._energy + 0.05 * self._speaking
        self._breath_phase = (self._breath_phase + math.tau * breath_hz * dt) % math.tau

    def _window(self, t_s: float, half: float) -> tuple[float, float]:
        low = t_s - half
        if self._cut_s <= t_s:
            low = max(low, self._cut_s)
        return low, t_s + half

    def _mouth(self, t_s: float) -> tuple[str, Speaker, MouthShape]:
        low, high = self._window(t_s, COARTICULATION_S)
        open_sum = width_sum = mass = 0.0
        viseme: str = SILENCE
        speaker: Speaker = "none"
        first = max(0, bisect.bisect_left(self._ends, low) - 1)
        for i in range(first, len(self._starts)):
            start, end = self._starts[i], self._ends[i]
            if start >= high:
                break
            if end <= low:
                continue
            shape = VISEME_SHAPES.get(self._names[i], _UNKNOWN_SHAPE)
            w = _tri_mass(max(start, low) - t_s, min(end, high) - t_s, COARTICULATION_S)
            open_sum += w * shape.open
            width_sum += w * shape.width
            mass += w
            if start <= t_s < end and t_s >= low:
                viseme, speaker = self._names[i], self._speakers[i]
        if mass > 1.0:
            open_sum, width_sum = open_sum / mass, width_sum / mass
        attack = self._attack(t_s)
        if attack is not None and attack.open > open_sum:
            open_sum, width_sum = attack.open, attack.width
        return viseme, speaker, MouthShape(open_sum, width_sum)

    def _attack(self, t_s: float) -> MouthShape | None:
        """The first open viseme after a pause, rising to its shape by its start."""
        i = bisect.bisect_right(self._starts, t_s + ATTACK_S) - 1
        while i >= 0 and self._ends[i] <= t_s:
            i -= 1
        if i < 0 or self._starts[i] < self._cut_s < t_s:
            return None
        shape = VISEME_SHAPES.get(self._names[i], _UNKNOWN_SHAPE)
        start = self._starts[i]
        if shape.open < _OPEN_VISEME or not start - ATTACK_S <= t_s < self._ends[i]:
            return None
        j = i - 1
        while j >= 0 and self._starts[j] > start - _PAUSE_S - 1.0:
            opened = VISEME_SHAPES.get(self._names[j], _UNKNOWN_SHAPE).open >= _OPEN_VISEME
            if opened and self._ends[j] > start - _PAUSE_S:
                return None
            j -= 1
        rise = _smooth((t_s - (start - ATTACK_S)) / ATTACK_S)
        return MouthShape(shape.open * rise, shape.width)

    def _envelope(self, t_s: float) -> float:
        low, high = self._window(t_s, _ENVELOPE_S)
        total = 0.0
        first = max(0, bisect.bisect_left(self._ends, low) - 1)
        for i in range(first, len(self._starts)):
            start, end = self._starts[i], self._ends[i]
            if start >= high:
                break
            if end > low:
                shape = VISEME_SHAPES.get(self._names[i], _UNKNOWN_SHAPE)
                mass = _tri_mass(max(start, low) - t_s, min(end, high) - t_s, _ENVELOPE_S)
                total += mass * shape.open
        return total

    def _blink(self, t_s: float) -> float:
        energy = self._energy
        if self._next_blink is None:
            self._next_blink = t_s + self._rng.uniform(0.5, 2.5)
        while t_s >= self._next_blink:
            self._blink_start = self._next_blink
            self._blink_len = 0.12 + 0.16 * (1 - energy)
            if self._rng.random() < 0.12:
                gap = self._blink_len + 0.12
            else:
                mean = 4.2 - 1.8 * energy
                gap = max(self._blink_len + 0.3, self._rng.gammavariate(3.0, mean / 3.0))
            self._next_blink = self._blink_start + gap
        phase = (t_s - self._blink_start) / self._blink_len
        if phase < 0 or phase >= 1:
            closure = 0.0
        elif phase < 0.3:
            closure = _smooth(phase / 0.3)
        elif phase < 0.5:
            closure = 1.0
        else:
            closure = 1.0 - _smooth((phase - 0.5) / 0.5)
        droop = 0.22 * (1 - energy) ** 2
        weight = self._expr_weight
        droop += {"calm": 0.08, "happy": 0.1, "sad": 0.12}.get(self._expr, 0.0) * weight
        return _clip01(droop + (1 - droop) * closure)

    def _head(self, t_s: float) -> Head:
        energy, speaking = self._energy, self._speaking
        liveliness = (0.6 + 0.8 * energy) * (1 + 0.8 * speaking)
        yaw = 0.8 * liveliness * self._yaw.value()
        pitch = 0.55 * liveliness * self._pitch.value()
        roll = 0.4 * liveliness * self._roll.value()
        pitch += 0.6 * math.sin(self._breath_phase)
        pitch -= 1.4 * self._envelope(t_s)
        pitch += self._nod(t_s)
        weight = self._expr_weight
        pose = {
            "happy": (0.0, 1.0, 0.0),
            "concerned": (0.0, -1.5, 1.5),
            "curious": (1.0, -0.8, 4.0),
            "surprised": (0.0, 1.5, 0.0),
            "sad": (0.0, -2.5, 0.0),
        }.get(self._expr, (0.0, 0.0, 0.0))
        return Head(
            yaw=_clip(yaw + pose[0] * weight, -45.0, 45.0),
            pitch=_clip(pitch + pose[1] * weight, -45.0, 45.0),
            roll=_clip(roll + pose[2] * weight, -45.0, 45.0),
        )

    def _nod(self, t_s: float) -> float:
        """Now and then a small listening nod; none while speaking."""
        if self._next_nod is None:
            self._next_nod = t_s + self._rng.uniform(3.0, 7.0)
        while t_s >= self._next_nod:
            if self._speaking < 0.2:
                self._nod_start = self._next_nod
            self._next_nod += self._rng.uniform(4.0, 9.0)
        phase = (t_s - self._nod_start) / 0.8
        if 0 <= phase < 1:
            return -1.8 * math.sin(math.pi * phase) ** 2
        return 0.0

    def _prune(self, before_s: float) -> None:
        drop = 0
        while drop < len(self._ends) and self._ends[drop] < before_s:
            drop += 1
        if drop:
            del self._starts[:drop], self._ends[:drop], self._names[:drop], self._speakers[:drop]


def _tri_mass(a: float, b: float, half: float) -> float:
    """Mass of the unit triangular kernel of half-width `half` between offsets a <= b."""

    def cdf(x: float) -> float:
        x = _clip(x, -half, half)
        if x <= 0:
            return (x + half) ** 2 / (2 * half * half)
        return 1 - (half - x) ** 2 / (2 * half * half)

    return max(0.0, cdf(b) - cdf(a))


def _smooth(x: float) -> float:
    x = _clip01(x)
    return x * x * (3 - 2 * x)


def _clip(x: float, low: float, high: float) -> float:
    return low if x < low else high if x > high else x


def _clip01(x: float) -> float:
    return _clip(x, 0.0, 1.0)
