"""Face states to video frames in the encoder's pixel format (yuv420p), at the video clock.

`Renderer` is the seam: the default `PortraitRenderer` animates the owner's portrait from a
precomputed `FaceRig`; a GPU talking-head model can implement the same protocol later.

Per frame the portrait renderer copies the precomputed I420 frame, pastes the mouth and eye
sprites for the state into the head region, shifts the head by a sub-pixel amount for its pose
and blends it into the still frame through a soft mask. Everything is uint8/uint16 array
arithmetic on small regions; nothing is converted from RGB per frame. Yaw and pitch move the
head; roll is not drawn by this 2D renderer (clients that animate a 3D model get it in
`AnimationFrame`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Protocol, runtime_checkable

import av
import numpy as np
import numpy.typing as npt

from twincast_gateway.avatar.animator import FaceState
from twincast_gateway.avatar.portrait import Portrait
from twincast_gateway.avatar.rig import (
    BRIGHT_LEVELS,
    BROW_LEVELS,
    CLOSURE_LEVELS,
    DEFAULT_SIZE,
    EXPRESSION_FACE,
    HEAD_PAD,
    OPEN_LEVELS,
    SMILE_LEVELS,
    WIDTH_LEVELS,
    FaceRig,
    Planes,
    Rect,
)
from twincast_gateway.avatar.yuv import split_i420

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]

VIDEO_CLOCK_RATE: Final = 90_000
VIDEO_TIME_BASE: Final = Fraction(1, VIDEO_CLOCK_RATE)
FPS: Final = 25
_EIGHT: Final = np.uint16(8)


@runtime_checkable
class Renderer(Protocol):
    """Turns the face's state into one video frame of `width` x `height`, stamped `pts`."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def render(self, state: FaceState, pts: int) -> av.VideoFrame: ...


# The head moves by the full shift inside its mask and not at all outside; between, the
# frame is a blend of copies shifted by fractions of it, so an edge there shows as a soft edge
# rather than a doubled one (at most shift / (MOTION_LEVELS - 1) apart).
MOTION_LEVELS: Final = 4


@dataclass(frozen=True, slots=True)
class _PlaneJob:
    index: int
    step: int
    pad: int
    rect: Rect  # the head region in this plane's pixels
    weights: tuple[U16, ...]  # per motion level, summing to 256 at each pixel


class PortraitRenderer:
    """The owner's portrait, animated; frames are yuv420p `av.VideoFrame`s of `size` x `size`."""

    def __init__(self, *, rig: FaceRig, time_base: Fraction = VIDEO_TIME_BASE) -> None:
        self._rig = rig
        self._time_base = time_base
        head = rig.head_rect
        jobs = []
        for index in range(3):
            step = 1 if index == 0 else 2
            alpha = rig.head_alpha if index == 0 else rig.head_alpha_chroma
            rect = Rect(head.x0 // step, head.y0 // step, head.x1 // step, head.y1 // step)
            jobs.append(
                _PlaneJob(
                    index=index,
                    step=step,
                    pad=HEAD_PAD // step,
                    rect=rect,
                    weights=_level_weights(alpha, MOTION_LEVELS),
                )
            )
        self._jobs = tuple(jobs)

    @classmethod
    def from_portrait(
        cls, portrait: Portrait, *, size: int = DEFAULT_SIZE, warm: bool = False
    ) -> PortraitRenderer:
        return cls(rig=FaceRig.build(portrait, size=size, warm=warm))

    @property
    def rig(self) -> FaceRig:
        return self._rig

    @property
    def width(self) -> int:
        return self._rig.size

    @property
    def height(self) -> int:
        return self._rig.size

    def render(self, state: FaceState, pts: int) -> av.VideoFrame:
        rig = self._rig
        smile, brow = EXPRESSION_FACE.get(state.expression, (0.0, 0.0))
        weight = _clip(state.expression_weight, 0.0, 1.0)
        mouth = self._mouth(state.mouth_open, state.mouth_width, smile * weight)
        closure = round(_clip(state.blink, 0.0, 1.0) * (CLOSURE_LEVELS - 1))
        eye_key = (
            closure,
            _nearest(BROW_LEVELS, brow * weight),
            _nearest(BRIGHT_LEVELS, _clip((state.energy - 0.45) / 0.45, 0.0, 1.0)),
        )
        sprites = (
            (rig.mouth.rect, mouth),
            (rig.eyes[0].rect, rig.eyes[0].get(eye_key)),
            (rig.eyes[1].rect, rig.eyes[1].get(eye_key)),
        )
        limit = HEAD_PAD - 1.0
        dx = _clip(state.head.yaw * rig.px_per_degree, -limit, limit)
        dy = _clip(-state.head.pitch * rig.px_per_degree, -limit, limit)

        out = rig.i420.copy()
        planes = split_i420(out)
        for job in self._jobs:
            self._compose(job, planes[job.index], sprites, dx / job.step, dy / job.step)
        frame = av.VideoFrame.from_numpy_buffer(out, format="yuv420p")
        frame.pts = pts
        frame.time_base = self._time_base
        return frame

    def _mouth(self, open_: float, width: float, smile: float) -> Planes:
        mouth = self._rig.mouth
        level = _clip(open_, 0.0, 1.0) * (OPEN_LEVELS - 1)
        low = min(int(level), OPEN_LEVELS - 2)
        frac = round((level - low) * 256)
        w, s = _nearest(WIDTH_LEVELS, width), _nearest(SMILE_LEVELS, smile)
        if frac <= 0:
            return mouth.get((low, w, s))
        if frac >= 256:
            return mouth.get((low + 1, w, s))
        a, b = mouth.get((low, w, s)), mouth.get((low + 1, w, s))
        mixed = [
            ((pa.astype(np.uint16) * (256 - frac) + pb * np.uint16(frac)) >> 8).astype(np.uint8)
            for pa, pb in zip(a, b, strict=True)
        ]
        return mixed[0], mixed[1], mixed[2]

    def _compose(
        self,
        job: _PlaneJob,
        dst: U8,
        sprites: tuple[tuple[Rect, Planes], ...],
        dx: float,
        dy: float,
    ) -> None:
        step, pad, rect = job.step, job.pad, job.rect
        source = self._rig.padded[job.index]
        work = source[rect.y0 : rect.y1 + 2 * pad, rect.x0 : rect.x1 + 2 * pad].copy()
        for sprite_rect, planes in sprites:
            y0 = sprite_rect.y0 // step - rect.y0 + pad
            x0 = sprite_rect.x0 // step - rect.x0 + pad
            patch = planes[job.index]
            work[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]] = patch
        h, w = rect.height, rect.width
        acc = work[pad : pad + h, pad : pad + w] * job.weights[0]
        last = len(job.weights) - 1
        for k in range(1, last + 1):
            shifted = _shift(work, pad - dx * k / last, pad - dy * k / last, h, w)
            acc += shifted * job.weights[k]
        dst[rect.y0 : rect.y1, rect.x0 : rect.x1] = acc >> 8


def _level_weights(alpha: U16, levels: int) -> tuple[U16, ...]:
    """Tent weights over `levels` motion levels for a 0..256 mask, summing to 256 per pixel."""
    position = alpha.astype(np.float64) / 256 * (levels - 1)
    weights = [
        np.round(np.clip(1 - np.abs(position - k), 0.0, 1.0) * 256).astype(np.uint16)
        for k in range(levels - 1)
    ]
    rest = 256 - np.sum(weights, axis=0, dtype=np.int32)
    weights.append(rest.astype(np.uint16))
    return tuple(weights)


def _shift(work: U8, sx: float, sy: float, h: int, w: int) -> U16:
    """work[sy : sy + h, sx : sx + w] sampled bilinearly at a fractional offset, as uint16."""
    ix, iy = math.floor(sx), math.floor(sy)
    fx, fy = round((sx - ix) * 256), round((sy - iy) * 256)
    if fx == 256:
        ix, fx = ix + 1, 0
    if fy == 256:
        iy, fy = iy + 1, 0
    rows = work[iy : iy + h + 1].astype(np.uint16)
    cols: U16 = rows[:, ix : ix + w]
    if fx:
        mixed = cols * np.uint16(256 - fx) + rows[:, ix + 1 : ix + 1 + w] * np.uint16(fx)
        cols = mixed >> _EIGHT
    if fy:
        top: U16 = cols[:h] * np.uint16(256 - fy)
        return (top + cols[1 : h + 1] * np.uint16(fy)) >> _EIGHT
    return cols[:h]


def _nearest(levels: tuple[float, ...], x: float) -> int:
    return min(range(len(levels)), key=lambda k: abs(levels[k] - x))


def _clip(x: float, low: float, high: float) -> float:
    return low if x < low else high if x > high else x
