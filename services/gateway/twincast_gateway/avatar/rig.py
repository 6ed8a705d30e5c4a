"""Everything a portrait renderer precomputes once, in the encoder's pixel format.

A `FaceRig` frames the portrait (head and shoulders, square), converts it to yuv420p once and
builds small sprites: the mouth region for each (jaw opening, lip width, smile) level and
each eye region for each (lid closure, brow, eye brightness) level. Sprites are made by
warping the portrait's own pixels (backward maps with bilinear sampling) and painting the
inside of the mouth, so the face keeps the owner's likeness. A rig is read-only once built
apart from its sprite caches, and may be shared by every session of a twin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

from twincast_gateway.avatar.geometry import Contour, FaceGeometry, PortraitError
from twincast_gateway.avatar.portrait import Portrait
from twincast_gateway.avatar.yuv import rgb_to_i420, rgb_to_yuv, split_i420

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
Planes = tuple[U8, U8, U8]

DEFAULT_SIZE: Final = 448
HEAD_PAD: Final = 8  # luma pixels of head travel the padded planes allow (even)

OPEN_LEVELS: Final = 12
WIDTH_LEVELS: Final = (-1.0, -0.5, 0.0, 0.5, 1.0)
SMILE_LEVELS: Final = (-1.0, -0.66, -0.33, 0.0, 0.33, 0.66, 1.0)
CLOSURE_LEVELS: Final = 8
BROW_LEVELS: Final = (-1.0, -0.5, 0.0, 0.5, 1.0)
BRIGHT_LEVELS: Final = (0.0, 0.5, 1.0)

# Expression label -> (smile, brow) at full weight; brow > 0 raises, < 0 furrows.
EXPRESSION_FACE: Final[Mapping[str, tuple[float, float]]] = MappingProxyType(
    {
        "neutral": (0.0, 0.0),
        "happy": (1.0, 0.25),
        "calm": (0.35, 0.0),
        "concerned": (-0.45, -0.85),
        "curious": (0.15, 1.0),
        "surprised": (0.0, 1.0),
        "sad": (-0.8, -0.4),
    }
)

_MOUTH_DARK: Final = rgb_to_yuv(40, 14, 18)
_TEETH: Final = rgb_to_yuv(230, 224, 212)
_TONGUE: Final = rgb_to_yuv(125, 52, 60)


@dataclass(frozen=True, slots=True)
class Rect:
    """A region in luma pixels, x0 <= x < x1, y0 <= y < y1, all even."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @classmethod
    def around(cls, x0: float, y0: float, x1: float, y1: float, *, size: int) -> Rect:
        """The even-aligned rectangle covering (x0, y0)-(x1, y1), clipped to the frame."""
        ix0 = max(0, math.floor(x0 / 2) * 2)
        iy0 = max(0, math.floor(y0 / 2) * 2)
        ix1 = min(size, math.ceil(x1 / 2) * 2)
        iy1 = min(size, math.ceil(y1 / 2) * 2)
        if ix1 - ix0 < 4 or iy1 - iy0 < 4:
            raise PortraitError("face region falls outside the frame")
        return cls(ix0, iy0, ix1, iy1)

    def union(self, other: Rect) -> Rect:
        return Rect(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )


@dataclass(frozen=True, slots=True)
class Sprite:
    """Replacement pixels for one region, per plane."""

    rect: Rect
    planes: Planes


class _SpriteSet:
    """Sprites of one region, built on first use and kept."""

    def __init__(self, *, rect: Rect, build: Callable[[tuple[int, ...]], Planes]) -> None:
        self.rect = rect
        self._build = build
        self._cache: dict[tuple[int, ...], Planes] = {}

    def get(self, key: tuple[int, ...]) -> Planes:
        planes = self._cache.get(key)
        if planes is None:
            planes = self._build(key)
            self._cache[key] = planes
        return planes

    def __len__(self) -> int:
        return len(self._cache)


class FaceRig:
    """A framed portrait in yuv420p with its mouth and eye sprites and head mask."""

    def __init__(self, *, portrait: Portrait, size: int = DEFAULT_SIZE) -> None:
        if size % 2 or size < 64:
            raise ValueError(f"size must be even and at least 64, got {size}")
        self.size = size
        rgb, geometry = _frame(portrait, size)
        self.geometry = geometry
        self.i420 = rgb_to_i420(rgb)
        self.i420.setflags(write=False)
        y, u, v = split_i420(self.i420)
        self.planes: Planes = (y, u, v)
        self.padded: Planes = (
            np.pad(y, HEAD_PAD, mode="edge"),
            np.pad(u, HEAD_PAD // 2, mode="edge"),
            np.pad(v, HEAD_PAD // 2, mode="edge"),
        )
        x0, _, x1, _ = geometry.face_box
        face_w = x1 - x0
        # Yaw/pitch in degrees to image shift: the face turns on a radius of half its width.
        self.px_per_degree = 0.5 * face_w * math.pi / 180

        self.mouth = _SpriteSet(rect=_mouth_rect(geometry, size), build=self._build_mouth)
        left, right = _eye_rects(geometry, size)
        self.eyes = (
            _SpriteSet(rect=left, build=lambda key: self._build_eye(0, key)),
            _SpriteSet(rect=right, build=lambda key: self._build_eye(1, key)),
        )
        ellipse = _head_ellipse(geometry)
        head = Rect.around(*ellipse.bounds(1.35), size=size)
        for part in (self.mouth.rect, left, right):
            head = head.union(part)
        self.head_rect = head
        self.head_alpha: U16 = ellipse.alpha(head)
        pairs = self.head_alpha[0::2, 0::2].astype(np.uint32) + self.head_alpha[1::2, 1::2]
        self.head_alpha_chroma: U16 = (pairs // 2).astype(np.uint16)

    @classmethod
    def build(cls, portrait: Portrait, *, size: int = DEFAULT_SIZE, warm: bool = False) -> FaceRig:
        rig = cls(portrait=portrait, size=size)
        if warm:
            rig.warm()
        return rig

    def warm(self) -> int:
        """Build every sprite now rather than on first use; returns how many there are."""
        for o in range(OPEN_LEVELS):
            for w in range(len(WIDTH_LEVELS)):
                for s in range(len(SMILE_LEVELS)):
                    self.mouth.get((o, w, s))
        for eye in self.eyes:
            for c in range(CLOSURE_LEVELS):
                for b in range(len(BROW_LEVELS)):
                    for e in range(len(BRIGHT_LEVELS)):
                        eye.get((c, b, e))
        return len(self.mouth) + sum(len(eye) for eye in self.eyes)

    # -- sprite builders ---------------------------------------------------------------

    def _build_mouth(self, key: tuple[int, ...]) -> Planes:
        o, w, s = key
        mouth = _MouthModel(
            self.geometry,
            rect=self.mouth.rect,
            open_=o / (OPEN_LEVELS - 1),
            width=WIDTH_LEVELS[w],
            smile=SMILE_LEVELS[s],
        )
        return _render_sprite(self.planes, self.mouth.rect, mouth)

    def _build_eye(self, side: int, key: tuple[int, ...]) -> Planes:
        c, b, e = key
        eye = _EyeModel(
            self.geometry,
            side=side,
            closure=c / (CLOSURE_LEVELS - 1),
            brow=BROW_LEVELS[b],
            bright=BRIGHT_LEVELS[e],
            rect=self.eyes[side].rect,
        )
        return _render_sprite(self.planes, self.eyes[side].rect, eye)


# -- framing -------------------------------------------------------------------------------


def _frame(portrait: Portrait, size: int) -> tuple[U8, FaceGeometry]:
    """Head and shoulders, square: the face's forehead-to-chin is about 40 % of the side."""
    g = portrait.geometry
    x0, y0, x1, y1 = g.face_box
    face_h = y1 - y0
    side = min(2.5 * face_h, float(portrait.width), float(portrait.height))
    left = (x0 + x1) / 2 - side / 2
    top = y0 - 0.55 * face_h
    left = min(max(left, 0.0), portrait.width - side)
    top = min(max(top, 0.0), portrait.height - side)
    box = (left, top, left + side, top + side)
    image = Image.fromarray(portrait.image).resize((size, size), Image.Resampling.LANCZOS, box=box)
    scale = size / side
    geometry = g.cropped_scaled(x0=left, y0=top, scale=scale, width=size, height=size)
    return np.asarray(image, dtype=np.uint8), geometry


@dataclass(frozen=True, slots=True)
class _Ellipse:
    """The head with its hair: moves whole inside, blends into the still frame outside."""

    cx: float
    cy: float
    a: float
    b: float

    def bounds(self, reach: float) -> tuple[float, float, float, float]:
        return (
            self.cx - reach * self.a,
            self.cy - reach * self.b,
            self.cx + reach * self.a,
            self.cy + reach * self.b,
        )

    def alpha(self, rect: Rect) -> U16:
        """256 inside, 0 from 1.35 radii out, smooth between."""
        ys, xs = np.mgrid[rect.y0 : rect.y1, rect.x0 : rect.x1].astype(np.float64)
        r = np.hypot((xs + 0.5 - self.cx) / self.a, (ys + 0.5 - self.cy) / self.b)
        alpha = 1 - _smoothstep((r - 1.0) / 0.35)
        return np.round(alpha * 256).astype(np.uint16)


def _head_ellipse(g: FaceGeometry) -> _Ellipse:
    x0, y0, x1, y1 = g.face_box
    fw, fh = x1 - x0, y1 - y0
    return _Ellipse(cx=(x0 + x1) / 2, cy=y0 + 0.42 * fh, a=0.68 * fw, b=0.74 * fh)


# -- sprite rendering ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layer:
    """Paint over the sampled pixels, on the luma grid.

    A blend moves each plane toward its `color` by `alpha`; a lift adds `alpha * color[0]` to
    luma and moves chroma toward its `color` by `alpha`. Luma's colour may vary per pixel.
    """

    alpha: F64
    color: tuple[float | F64, float, float]
    lift: bool = False


@dataclass(frozen=True, slots=True)
class _Field:
    """Where each output pixel of a sprite samples the portrait (luma pixels), and paint."""

    sx: F64
    sy: F64
    layers: tuple[_Layer, ...] = ()


class _Model(Protocol):
    def evaluate(self, xs: F64, ys: F64) -> _Field: ...


def _render_sprite(planes: Planes, rect: Rect, model: _Model) -> Planes:
    """One evaluation on the luma grid; chroma takes the 2x2 means of its maps."""
    xs, ys = np.meshgrid(
        np.arange(rect.x0, rect.x1, dtype=np.float64),
        np.arange(rect.y0, rect.y1, dtype=np.float64),
    )
    field = model.evaluate(xs, ys)
    out: list[U8] = []
    for index, plane in enumerate(planes):
        if index == 0:
            values = _bilinear(plane, field.sx, field.sy)
        else:
            values = _bilinear(plane, (_half(field.sx) - 0.5) / 2, (_half(field.sy) - 0.5) / 2)
        for layer in field.layers:
            alpha = layer.alpha if index == 0 else _half(layer.alpha)
            color = layer.color[index]
            if layer.lift and index == 0:
                values = values + alpha * color
            else:
                values = values + (color - values) * alpha
        out.append(np.clip(np.round(values), 0, 255).astype(np.uint8))
    return out[0], out[1], out[2]


def _half(a: F64) -> F64:
    result: F64 = (a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2]) * 0.25
    return result


def _bilinear(plane: U8, sx: F64, sy: F64) -> F64:
    h, w = plane.shape
    sx = np.clip(sx, 0.0, w - 1.0001)
    sy = np.clip(sy, 0.0, h - 1.0001)
    x0 = sx.astype(np.intp)
    y0 = sy.astype(np.intp)
    fx, fy = sx - x0, sy - y0
    p = plane.astype(np.float64)
    top = p[y0, x0] * (1 - fx) + p[y0, x0 + 1] * fx
    bottom = p[y0 + 1, x0] * (1 - fx) + p[y0 + 1, x0 + 1] * fx
    result: F64 = top * (1 - fy) + bottom * fy
    return result


def _sq(x: F64) -> F64:
    result: F64 = x * x
    return result


def _smoothstep(x: F64) -> F64:
    x = np.clip(x, 0.0, 1.0)
    result: F64 = x * x * (3 - 2 * x)
    return result


def _curve(contour: Contour, xs: F64) -> F64:
    """y of a contour (sorted by x) at xs; the end values beyond its ends."""
    pts = sorted(contour)
    result: F64 = np.interp(xs, [p[0] for p in pts], [p[1] for p in pts])
    return result


def _taper(xs: F64, ys: F64, rect: Rect, margin: float = 4.0) -> F64:
    """1 inside the rectangle, falling to 0 at its edges: warps never move its border."""
    tx = np.minimum(xs - rect.x0, rect.x1 - xs) / margin
    ty = np.minimum(ys - rect.y0, rect.y1 - ys) / margin
    return _smoothstep(np.minimum(tx, ty))


# -- the mouth -----------------------------------------------------------------------------


def _mouth_rect(g: FaceGeometry, size: int) -> Rect:
    frame = _MouthFrame(g)
    hw = frame.half_width
    corners = []
    for u, v in (
        (-2.6 * hw, frame.v_nose),
        (2.6 * hw, frame.v_nose),
        (-2.6 * hw, frame.v_bottom),
        (2.6 * hw, frame.v_bottom),
    ):
        corners.append(frame.to_image(u, v))
    xs = [c[0] for c in corners]
    ys = [c[1] for c in corners]
    return Rect.around(min(xs), min(ys), max(xs), max(ys), size=size)


class _MouthFrame:
    """Mouth-local coordinates: u along the corners (image-left to right), v down, 0 between."""

    def __init__(self, g: FaceGeometry) -> None:
        (lx, ly), (rx, ry) = g.mouth_left, g.mouth_right
        self.origin = ((lx + rx) / 2, (ly + ry) / 2)
        length = math.hypot(rx - lx, ry - ly)
        self.eu = ((rx - lx) / length, (ry - ly) / length)
        self.ev = (-self.eu[1], self.eu[0])
        self.half_width = length / 2
        self.upper = self._local(g.lips_inner_upper)
        self.lower = self._local(g.lips_inner_lower)
        self.v_nose = self.to_local(*g.nose_tip)[1]
        self.v_chin = max(self.to_local(x, y)[1] for x, y in g.oval)
        if not (self.v_nose < 0 < self.v_chin):
            raise PortraitError("face geometry: the mouth is not between nose and chin")
        self.max_drop = 0.51 * self.half_width
        self.fade_len = max(0.6 * self.v_chin, 2.2 * self.max_drop)
        self.v_bottom = self.v_chin + self.fade_len + self.max_drop + 4

    def to_local(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = x - self.origin[0], y - self.origin[1]
        return dx * self.eu[0] + dy * self.eu[1], dx * self.ev[0] + dy * self.ev[1]

    def to_image(self, u: float, v: float) -> tuple[float, float]:
        return (
            self.origin[0] + u * self.eu[0] + v * self.ev[0],
            self.origin[1] + u * self.eu[1] + v * self.ev[1],
        )

    def _local(self, contour: Contour) -> Contour:
        return tuple(self.to_local(x, y) for x, y in contour)


class _MouthModel:
    """Jaw drop with a painted mouth interior, then lip width and smile, as one backward map."""

    def __init__(
        self, g: FaceGeometry, *, rect: Rect, open_: float, width: float, smile: float
    ) -> None:
        self.f = _MouthFrame(g)
        hw = self.f.half_width
        gap = open_ * 0.6 * hw
        self.d_up, self.d_lo = 0.15 * gap, 0.85 * gap
        self.q = 0.5 - 0.2 * max(width, 0.0)
        self.k_width = (0.12 if width > 0 else 0.22) * width
        self.smile = smile
        self.paint_strength = min(1.0, open_ / 0.1)
        self.rect = rect

    def _lens(self, u: F64) -> F64:
        result: F64 = np.power(np.clip(1 - _sq(u / self.f.half_width), 0.0, 1.0), self.q)
        return result

    def _lips_disp(self, u: F64, v: F64) -> tuple[F64, F64]:
        """Forward displacement of lip width and smile at (u, v)."""
        hw = self.f.half_width
        du = np.zeros_like(u)
        dv = np.zeros_like(v)
        if self.k_width:
            a = _sq(u / (1.7 * hw))
            b = _sq((v - 0.35 * self.d_lo) / (0.9 * hw + 0.5 * self.d_lo))
            du += self.k_width * u * np.exp(-(a * a) - b)
        if self.smile:
            c = _sq((np.abs(u) - 0.95 * hw) / (0.45 * hw))
            d = _sq((v - 0.3 * self.d_lo) / (0.7 * hw))
            env = np.exp(-c - d)
            du += self.smile * 0.07 * hw * np.sign(u) * env
            dv -= self.smile * 0.22 * hw * env
        return du, dv

    def _to_local(self, xs: F64, ys: F64) -> tuple[F64, F64]:
        f = self.f
        dx, dy = xs - f.origin[0], ys - f.origin[1]
        return dx * f.eu[0] + dy * f.eu[1], dx * f.ev[0] + dy * f.ev[1]

    def _to_image(self, u: F64, v: F64) -> tuple[F64, F64]:
        f = self.f
        return (
            f.origin[0] + u * f.eu[0] + v * f.ev[0],
            f.origin[1] + u * f.eu[1] + v * f.ev[1],
        )

    def evaluate(self, xs: F64, ys: F64) -> _Field:
        f, hw = self.f, self.f.half_width
        taper = _taper(xs, ys, self.rect)
        u, v = self._to_local(xs, ys)

        # Lip width and smile act last, so they are undone first.
        qu, qv = u.copy(), v.copy()
        for _ in range(3):
            du, dv = self._lips_disp(qu, qv)
            qu, qv = u - du * taper, v - dv * taper

        # The jaw drop: the upper lip rises a little, everything from the lower lip to the
        # chin comes down, fading out below the chin; the gap between the lips opens.
        up = _interp_local(f.upper, qu)
        lo = np.maximum(_interp_local(f.lower, qu), up)
        held = lo - up  # the portrait's own parted lips (and teeth), kept under the upper lip
        lens = self._lens(qu)
        jaw = np.exp(-_sq(_sq(qu / (1.25 * hw))))
        top = up - self.d_up * lens
        bottom = lo + self.d_lo * lens
        chin_span = np.maximum(0.5 * (f.v_chin - lo), 1.0)
        lip_span = np.maximum(up - f.v_nose, 1.0)
        v_lo = qv - self.d_lo * lens
        v_up = qv + self.d_up * lens
        for _ in range(4):
            tt = _smoothstep((v_lo - lo) / chin_span)
            fade = 1 - _smoothstep((v_lo - f.v_chin) / f.fade_len)
            v_lo = np.maximum(qv - self.d_lo * ((1 - tt) * lens + tt * jaw) * fade, lo)
            v_up = np.minimum(qv + self.d_up * lens * _smoothstep((v_up - f.v_nose) / lip_span), up)
        painted_top = top + held
        in_held = up + (qv - top)
        src_v = np.where(
            qv <= top,
            v_up,
            np.where(qv >= bottom, v_lo, np.where(qv < painted_top, in_held, lo + 0.5)),
        )
        src_v = qv + (src_v - qv) * taper
        sx, sy = self._to_image(qu, src_v)
        if self.paint_strength <= 0:
            return _Field(sx=sx, sy=sy)

        # The inside of the mouth: dark, upper teeth under the lip, the tongue low down.
        cover = np.clip(np.minimum(qv + 0.5, bottom) - np.maximum(qv - 0.5, painted_top), 0, 1)
        cover *= self.paint_strength * taper
        gap = np.maximum(bottom - painted_top, 0.0)
        teeth_h = np.minimum(0.3 * hw, 0.5 * gap)
        teeth = np.clip(painted_top + teeth_h - qv + 0.5, 0.0, 1.0)
        teeth *= np.clip((0.8 * hw - np.abs(qu)) / (0.25 * hw), 0.0, 1.0)
        teeth *= np.clip(1 - held / (0.12 * hw), 0.0, 1.0)
        tongue = np.clip((qv - (bottom - 0.3 * gap)) / 2.0, 0.0, 1.0)
        tongue *= np.clip((0.6 * hw - np.abs(qu)) / (0.2 * hw), 0.0, 1.0)
        tongue *= np.clip(gap / (0.45 * hw) - 0.5, 0.0, 1.0)
        tooth_y = _TEETH[0] * (0.72 + 0.28 * lens)
        return _Field(
            sx=sx,
            sy=sy,
            layers=(
                _Layer(alpha=cover, color=_MOUTH_DARK),
                _Layer(alpha=cover * tongue, color=_TONGUE),
                _Layer(alpha=cover * teeth, color=(tooth_y, _TEETH[1], _TEETH[2])),
            ),
        )


def _interp_local(contour: Contour, u: F64) -> F64:
    pts = sorted(contour)
    result: F64 = np.interp(u, [p[0] for p in pts], [p[1] for p in pts])
    return result


# -- the eyes ------------------------------------------------------------------------------


def _eye_parts(g: FaceGeometry, side: int) -> tuple[Contour, Contour, Contour]:
    if side == 0:
        return g.eye_left_upper, g.eye_left_lower, g.brow_left
    return g.eye_right_upper, g.eye_right_lower, g.brow_right


def _eye_rects(g: FaceGeometry, size: int) -> tuple[Rect, Rect]:
    boxes = []
    for side in (0, 1):
        upper, lower, brow = _eye_parts(g, side)
        xs = [p[0] for p in (*upper, *lower)]
        eye_w = max(xs) - min(xs)
        brow_y = min(p[1] for p in brow)
        eye_y = sum(p[1] for p in (*upper, *lower)) / (len(upper) + len(lower))
        reach = max(eye_y - brow_y, 0.3 * eye_w)
        low = max(p[1] for p in lower)
        bx0 = min(min(xs), min(p[0] for p in brow)) - 0.45 * eye_w
        bx1 = max(max(xs), max(p[0] for p in brow)) + 0.45 * eye_w
        boxes.append([bx0, brow_y - 1.1 * reach, bx1, low + 0.7 * eye_w])
    left, right = boxes
    if left[2] > right[0]:  # regions meet over the nose: split them halfway
        mid = (left[2] + right[0]) / 2
        left[2], right[0] = mid, mid
    rect_l = Rect.around(*left, size=size)
    rect_r = Rect.around(*right, size=size)
    if rect_l.x1 > rect_r.x0:
        rect_r = Rect(rect_l.x1, rect_r.y0, rect_r.x1, rect_r.y1)
    return rect_l, rect_r


class _EyeModel:
    """Brighter eyes, then lids closing over the eye, then the brow raised or furrowed."""

    def __init__(
        self,
        g: FaceGeometry,
        *,
        side: int,
        closure: float,
        brow: float,
        bright: float,
        rect: Rect,
    ) -> None:
        self.upper, self.lower, self.brow_line = _eye_parts(g, side)
        self.iris = g.iris_left if side == 0 else g.iris_right
        xs = [p[0] for p in (*self.upper, *self.lower)]
        self.x_min, self.x_max = min(xs), max(xs)
        self.eye_w = self.x_max - self.x_min
        eye_y = sum(p[1] for p in (*self.upper, *self.lower)) / (len(self.upper) + len(self.lower))
        brow_y = sum(p[1] for p in self.brow_line) / len(self.brow_line)
        self.reach = max(eye_y - brow_y, 0.3 * self.eye_w)
        probe = np.linspace(self.x_min, self.x_max, 32)
        opening = float(np.max(_curve(self.lower, probe) - _curve(self.upper, probe)))
        self.lid_h = max(2.0, min(0.9 * opening, 0.6 * self.reach))
        self.under_h = max(2.0, 0.6 * opening)
        self.closure, self.brow, self.bright = closure, brow, bright
        # The inner end of the brow is the one nearer the nose (the image centre line).
        self.inward = 1.0 if side == 0 else -1.0
        self.rect = rect

    def _brow_inverse(self, xs: F64, ys: F64) -> tuple[F64, F64]:
        if self.brow == 0:
            return xs, ys
        taper = _taper(xs, ys, self.rect)
        brow_xs = [p[0] for p in self.brow_line]
        bx0, bx1 = min(brow_xs), max(brow_xs)
        sigma_y = 0.5 * self.reach
        sigma_x = 0.3 * self.eye_w
        qx, qy = xs.copy(), ys.copy()
        for _ in range(3):
            outside = np.maximum(bx0 - qx, 0) + np.maximum(qx - bx1, 0)
            bump = np.exp(-((outside / sigma_x) ** 2)) * np.exp(
                -(((qy - _curve(self.brow_line, qx)) / sigma_y) ** 2)
            )
            if self.brow > 0:
                dy = -self.brow * 0.3 * self.reach * bump
                dx = np.zeros_like(bump)
            else:
                along = np.clip((qx - bx0) / max(bx1 - bx0, 1.0), 0.0, 1.0)
                inner = along if self.inward > 0 else 1 - along
                dy = -self.brow * 0.16 * self.reach * bump
                dx = self.inward * -self.brow * 0.1 * self.eye_w * inner * bump
            qx, qy = xs - dx * taper, ys - dy * taper
        return qx, qy

    def _lids_inverse(self, xs: F64, ys: F64) -> F64:
        c = self.closure
        if c <= 0:
            return ys
        y_up = _curve(self.upper, xs)
        y_lo = np.maximum(_curve(self.lower, xs), y_up)
        inside = (xs > self.x_min) & (xs < self.x_max)
        gap = np.where(inside, y_lo - y_up, 0.0)
        rise = 0.15 * c * gap
        y_lo2 = y_lo - rise
        y_c = y_up + c * (y_lo2 - y_up)
        top = y_up - self.lid_h
        above = top + (ys - top) * self.lid_h / (self.lid_h + (y_c - y_up))
        below = y_lo + (ys - y_lo2) * self.under_h / (self.under_h + rise)
        src = np.where(
            (ys >= top) & (ys <= y_c),
            above,
            np.where((ys >= y_lo2) & (ys <= y_lo + self.under_h), below, ys),
        )
        result: F64 = np.where(inside, src, ys)
        return result

    def evaluate(self, xs: F64, ys: F64) -> _Field:
        qx, qy = self._brow_inverse(xs, ys)
        sx, sy = qx, self._lids_inverse(qx, qy)
        if self.bright <= 0:
            return _Field(sx=sx, sy=sy)
        # Brighter eyes: the eye opening lifted a little and a catchlight, where the source is.
        y_up = _curve(self.upper, sx)
        y_lo = _curve(self.lower, sx)
        opening = np.clip(np.minimum(sy - y_up, y_lo - sy), 0.0, 1.0)
        opening *= (sx > self.x_min) & (sx < self.x_max)
        r = self.iris.radius
        cx, cy = self.iris.x - 0.35 * r, self.iris.y - 0.4 * r
        sigma = max(0.7, 0.18 * r)
        glint = np.exp(-((sx - cx) ** 2 + (sy - cy) ** 2) / (2 * sigma * sigma)) * opening
        lift = self.bright * (8.0 * opening + 90.0 * glint) / 90.0
        return _Field(
            sx=sx,
            sy=sy,
            layers=(_Layer(alpha=lift, color=(90.0, 128.0, 128.0), lift=True),),
        )
