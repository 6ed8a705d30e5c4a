"""The sample twin's face: an illustrated head-and-shoulders portrait drawn with Pillow.

Juniper Hale is a fictional field ecologist; her face is drawn here from simple shapes (an
illustration, no real person's likeness), and the face geometry the renderer animates comes
from the same curves that draw it, so no landmark model is involved.

    uv run python -m twincast_gateway.avatar.drawn examples/twins/juniper/face/portrait.png
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from twincast_gateway.avatar.geometry import Contour, FaceGeometry, Iris, Point
from twincast_gateway.avatar.portrait import Portrait

SIZE: Final = 512
_SS: Final = 2  # drawn at twice the size, then reduced: smooth edges

RGB = tuple[int, int, int]
SKIN: Final[RGB] = (230, 176, 146)
SKIN_SHADE: Final[RGB] = (200, 140, 112)
SKIN_LINE: Final[RGB] = (170, 108, 84)
HAIR: Final[RGB] = (150, 74, 42)
HAIR_DARK: Final[RGB] = (104, 48, 28)
HAIR_LIGHT: Final[RGB] = (190, 104, 60)
BROW: Final[RGB] = (112, 58, 34)
IRIS: Final[RGB] = (84, 124, 62)
LID_LINE: Final[RGB] = (58, 34, 24)
LIP_UPPER: Final[RGB] = (178, 88, 80)
LIP_LOWER: Final[RGB] = (198, 106, 96)
LIP_SEAM: Final[RGB] = (122, 52, 48)
JACKET: Final[RGB] = (96, 108, 60)
JACKET_DARK: Final[RGB] = (70, 80, 42)
SHIRT: Final[RGB] = (238, 226, 196)


def _pow(x: float, p: float) -> float:
    return float(max(x, 0.0) ** p)


def _face_contour(t: float) -> Point:
    """The face outline, t in [0, 1) clockwise from the top of the forehead."""
    theta = math.tau * t
    cx, cy, a, b = 256.0, 252.0, 80.0, 100.0
    narrow = 1 - 0.22 * _pow(-math.cos(theta), 2)
    return cx + a * math.sin(theta) * narrow, cy - b * math.cos(theta)


def _arc(x0: float, x1: float, n: int, y: Callable[[float], float]) -> Contour:
    """n points from x0 to x1 (image-left to image-right) with y as a function of t in [0,1]."""
    return tuple((x0 + (x1 - x0) * k / (n - 1), y(k / (n - 1))) for k in range(n))


def _eye(center_x: float, *, outer_left: bool) -> tuple[Contour, Contour, Iris]:
    yc, half = 238.0, 19.0
    outer_dy, inner_dy = -1.6, 0.6
    y_left, y_right = (
        (yc + outer_dy, yc + inner_dy) if outer_left else (yc + inner_dy, yc + outer_dy)
    )

    def base(t: float) -> float:
        return y_left + (y_right - y_left) * t

    upper = _arc(
        center_x - half,
        center_x + half,
        9,
        lambda t: base(t) - 8.5 * _pow(math.sin(math.pi * t), 0.85),
    )
    lower = _arc(
        center_x - half,
        center_x + half,
        9,
        lambda t: base(t) + 6.0 * _pow(math.sin(math.pi * t), 1.2),
    )
    return upper, lower, Iris(x=center_x, y=yc + 0.5, radius=8.0)


def _brow(x_outer: float, x_inner: float) -> Contour:
    left, right = min(x_outer, x_inner), max(x_outer, x_inner)
    inner_on_right = x_inner > x_outer

    def y(t: float) -> float:
        s = t if inner_on_right else 1 - t  # 0 at the outer end
        return 216.0 - 9.0 * math.sin(math.pi * (0.25 + 0.6 * s)) + 3.0 * (1 - s)

    return _arc(left, right, 5, y)


def juniper_geometry() -> FaceGeometry:
    """Juniper's face geometry in the 512x512 portrait, from the curves that draw her."""
    eye_l_up, eye_l_lo, iris_l = _eye(218.0, outer_left=True)
    eye_r_up, eye_r_lo, iris_r = _eye(294.0, outer_left=False)
    mouth_y = 314.0

    def upper_outer(t: float) -> float:
        bow = 7.0 * _pow(math.sin(math.pi * t), 0.7) - 1.8 * math.exp(-(((t - 0.5) / 0.08) ** 2))
        return mouth_y - 1.5 - bow + 1.5 * (1 - math.sin(math.pi * t))

    def seam(t: float) -> float:
        return mouth_y + 1.2 * math.sin(math.pi * t) - 1.0 * (1 - math.sin(math.pi * t))

    return FaceGeometry(
        width=SIZE,
        height=SIZE,
        source="drawn",
        oval=tuple(_face_contour(k / 36) for k in range(36)),
        lips_outer_upper=_arc(226.0, 286.0, 11, upper_outer),
        lips_outer_lower=_arc(
            226.0, 286.0, 11, lambda t: seam(t) + 9.5 * _pow(math.sin(math.pi * t), 0.8)
        ),
        lips_inner_upper=_arc(228.0, 284.0, 11, seam),
        lips_inner_lower=_arc(228.0, 284.0, 11, seam),
        eye_left_upper=eye_l_up,
        eye_left_lower=eye_l_lo,
        eye_right_upper=eye_r_up,
        eye_right_lower=eye_r_lo,
        brow_left=_brow(194.0, 240.0),
        brow_right=_brow(318.0, 272.0),
        iris_left=iris_l,
        iris_right=iris_r,
        nose_tip=(256.0, 283.0),
    )


class _Canvas:
    """Drawing in portrait coordinates on a supersampled RGBA canvas."""

    def __init__(self) -> None:
        self.image = Image.new("RGBA", (SIZE * _SS, SIZE * _SS), (0, 0, 0, 255))

    @staticmethod
    def xy(points: Sequence[Point]) -> list[tuple[float, float]]:
        return [(x * _SS, y * _SS) for x, y in points]

    def layer(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        img = Image.new("RGBA", self.image.size, (0, 0, 0, 0))
        return img, ImageDraw.Draw(img)

    def put(
        self, layer: Image.Image, *, blur: float = 0.0, mask: Image.Image | None = None
    ) -> None:
        if blur:
            layer = layer.filter(ImageFilter.GaussianBlur(blur * _SS))
        if mask is not None:
            alpha = Image.fromarray(
                (
                    np.asarray(layer.getchannel("A"), dtype=np.uint16) * np.asarray(mask) // 255
                ).astype(np.uint8)
            )
            layer.putalpha(alpha)
        self.image.alpha_composite(layer)

    def polygon(self, points: Sequence[Point], fill: RGB, *, alpha: int = 255) -> None:
        img, d = self.layer()
        d.polygon(self.xy(points), fill=(*fill, alpha))
        self.put(img)

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        fill: RGB,
        *,
        alpha: int = 255,
        blur: float = 0.0,
    ) -> None:
        img, d = self.layer()
        box = ((cx - rx) * _SS, (cy - ry) * _SS, (cx + rx) * _SS, (cy + ry) * _SS)
        d.ellipse(box, fill=(*fill, alpha))
        self.put(img, blur=blur)

    def line(
        self,
        points: Sequence[Point],
        fill: RGB,
        width: float,
        *,
        alpha: int = 255,
        blur: float = 0.0,
    ) -> None:
        img, d = self.layer()
        d.line(
            self.xy(points), fill=(*fill, alpha), width=max(1, round(width * _SS)), joint="curve"
        )
        self.put(img, blur=blur)

    def rgb(self) -> Image.Image:
        return self.image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def _closed(upper: Contour, lower: Contour) -> list[Point]:
    return [*upper, *reversed(lower[1:-1])]


def draw_juniper(*, seed: int = 7) -> Portrait:
    """Juniper Hale's illustrated portrait with its face geometry."""
    rng = random.Random(seed)
    g = juniper_geometry()
    c = _Canvas()

    # Background: a sage-green gradient with pale leaves.
    top, bottom = np.array([216, 230, 207]), np.array([160, 192, 150])
    ramp = np.linspace(0, 1, SIZE * _SS)[:, None, None]
    gradient = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    bg = np.broadcast_to(gradient, (SIZE * _SS, SIZE * _SS, 3))
    c.image = Image.fromarray(np.ascontiguousarray(bg)).convert("RGBA")
    for _ in range(14):
        x, y = rng.uniform(0, SIZE), rng.uniform(0, SIZE * 0.8)
        length, angle = rng.uniform(18, 40), rng.uniform(0, math.pi)
        img, d = c.layer()
        pts = [
            (
                x
                + length * math.cos(angle) * k / 8
                + 0.3 * length * math.sin(math.pi * k / 8) * -math.sin(angle),
                y
                + length * math.sin(angle) * k / 8
                + 0.3 * length * math.sin(math.pi * k / 8) * math.cos(angle),
            )
            for k in range(9)
        ]
        pts += [
            (
                x
                + length * math.cos(angle) * k / 8
                - 0.3 * length * math.sin(math.pi * k / 8) * -math.sin(angle),
                y
                + length * math.sin(angle) * k / 8
                - 0.3 * length * math.sin(math.pi * k / 8) * math.cos(angle),
            )
            for k in range(8, -1, -1)
        ]
        d.polygon(c.xy(pts), fill=(236, 244, 226, 110))
        c.put(img, blur=0.6)

    # Hair behind the head, down to the shoulders, with a wavy end.
    back = [(256 + 112 * math.cos(a), 222 - 124 * math.sin(a)) for a in np.linspace(math.pi, 0, 40)]
    side = [
        (222 + 182 * k / 10, 6 * math.sin(math.pi * k / 10) - 14 * (k / 10) ** 3) for k in range(11)
    ]
    back += [(368 + dx, y) for y, dx in side[1:]]
    back += [(354 - 196 * k / 12, 404 + 7 * math.sin(math.pi * k / 2)) for k in range(1, 12)]
    back += [(144 - dx, y) for y, dx in reversed(side[1:])]
    c.polygon(back, HAIR_DARK)

    # Neck, shadowed under the chin.
    neck = [(218.0, 318.0), (294.0, 318.0), (300.0, 440.0), (212.0, 440.0)]
    c.polygon(neck, SKIN)
    neck_mask = Image.new("L", c.image.size, 0)
    ImageDraw.Draw(neck_mask).polygon(c.xy(neck), fill=255)
    img, d = c.layer()
    d.ellipse(c.xy([(196.0, 336.0), (316.0, 376.0)]), fill=(*SKIN_SHADE, 230))
    c.put(img, blur=5, mask=neck_mask)

    # Shoulders in a field jacket over a cream shirt, a bee pin on the lapel.
    c.ellipse(256, 575, 262, 165, JACKET)
    c.polygon([(210.0, 418.0), (302.0, 418.0), (256.0, 492.0)], SHIRT)
    c.polygon([(206.0, 414.0), (256.0, 496.0), (228.0, 512.0), (176.0, 430.0)], JACKET_DARK)
    c.polygon([(306.0, 414.0), (256.0, 496.0), (284.0, 512.0), (336.0, 430.0)], JACKET_DARK)
    c.line([(256.0, 496.0), (256.0, 512.0)], JACKET_DARK, 2)
    c.ellipse(330, 474, 9, 6, (232, 186, 40))
    for dx in (-3.0, 1.5):
        c.line([(330 + dx, 468.5), (330 + dx, 479.5)], (30, 24, 20), 2)
    c.ellipse(326, 466, 5, 3.5, (250, 250, 250), alpha=210)
    c.ellipse(334, 466, 5, 3.5, (250, 250, 250), alpha=210)

    # Ears, then the face with a soft outline.
    for x in (178.0, 334.0):
        c.ellipse(x, 258, 12, 24, SKIN_SHADE)
        c.ellipse(x + (2 if x < 256 else -2), 258, 8, 18, SKIN)
    c.polygon(list(g.oval), SKIN)
    c.line([*g.oval, g.oval[0]], SKIN_LINE, 1.6, alpha=170)
    for cheek in (-1.0, 1.0):
        c.ellipse(256 + cheek * 46, 290, 20, 12, (232, 136, 120), alpha=45, blur=5)

    # Hair over the top of the head and a fringe swept to the image-left.
    crown = [
        (256 + 101 * math.cos(a), 214 - 112 * math.sin(a)) for a in np.linspace(math.pi, 0, 40)
    ]
    edge = [
        (352.0, 246.0),
        (340.0, 200.0),
        (314.0, 176.0),
        (282.0, 166.0),
        (250.0, 168.0),
        (222.0, 178.0),
        (198.0, 194.0),
        (178.0, 216.0),
        (166.0, 250.0),
    ]
    c.polygon([*crown, *edge], HAIR)
    for k in range(1, len(edge) - 1):
        ex, ey = edge[k]
        a = math.pi * (0.3 + 0.5 * k / len(edge))
        sx, sy = 256 + 90 * math.cos(a), 214 - 100 * math.sin(a)
        cx, cy = (sx + ex) / 2 + 14, (sy + ey) / 2 - 4
        strand = [
            (
                (1 - t) ** 2 * sx + 2 * (1 - t) * t * cx + t * t * ex,
                (1 - t) ** 2 * sy + 2 * (1 - t) * t * cy + t * t * (ey - 7),
            )
            for t in np.linspace(0, 1, 10)
        ]
        c.line(strand, HAIR_LIGHT, 1.6, alpha=110)
    for x0 in (166.0, 346.0):
        c.line([(x0, 210.0), (x0 + (3 if x0 < 256 else -3), 260.0)], HAIR_LIGHT, 1.6, alpha=100)

    # Brows.
    for brow in (g.brow_left, g.brow_right):
        brow_lower = [
            (x, y + 4.5 - 2.0 * abs(k - 4 if brow is g.brow_left else k) / 4)
            for k, (x, y) in enumerate(brow)
        ]
        c.polygon([*brow, *reversed(brow_lower)], BROW)

    # Eyes: white, iris clipped by the lids, lid lines, crease and lashes.
    eyes = (
        (g.eye_left_upper, g.eye_left_lower, g.iris_left, -1.0),
        (g.eye_right_upper, g.eye_right_lower, g.iris_right, 1.0),
    )
    for lid, lower_lid, iris, outward in eyes:
        shape = _closed(lid, lower_lid)
        c.polygon(shape, (246, 241, 232))
        mask_img = Image.new("L", c.image.size, 0)
        ImageDraw.Draw(mask_img).polygon(c.xy(shape), fill=255)
        img, d = c.layer()
        r = iris.radius
        d.ellipse(
            ((iris.x - r) * _SS, (iris.y - r) * _SS, (iris.x + r) * _SS, (iris.y + r) * _SS),
            fill=(*IRIS, 255),
            outline=(50, 76, 38, 255),
            width=_SS,
        )
        rp = 3.6
        d.ellipse(
            ((iris.x - rp) * _SS, (iris.y - rp) * _SS, (iris.x + rp) * _SS, (iris.y + rp) * _SS),
            fill=(24, 20, 18, 255),
        )
        d.ellipse(
            (
                (iris.x - 4.2) * _SS,
                (iris.y - 4.6) * _SS,
                (iris.x - 1.0) * _SS,
                (iris.y - 1.4) * _SS,
            ),
            fill=(255, 255, 255, 235),
        )
        c.put(img, mask=mask_img)
        shadow = [(x, y + 2.0) for x, y in lid]
        c.line(shadow, SKIN_SHADE, 2.5, alpha=90, blur=0.8)
        c.line(
            [(x, y - 6.5 - 1.5 * math.sin(math.pi * k / 8)) for k, (x, y) in enumerate(lid)][1:-1],
            SKIN_LINE,
            1.1,
            alpha=140,
        )
        c.line(list(lid), LID_LINE, 2.4)
        c.line(list(lower_lid), SKIN_LINE, 1.0, alpha=170)
        outer = lid[0] if outward < 0 else lid[-1]
        for k in range(3):
            c.line(
                [outer, (outer[0] + outward * (4 + 2 * k), outer[1] - 3 - 2.0 * k)], LID_LINE, 1.3
            )

    # Nose: a side shadow, nostrils, a light tip; freckles across it.
    c.line([(263.0, 246.0), (265.0, 272.0), (268.0, 281.0)], SKIN_SHADE, 2.2, alpha=160, blur=0.8)
    for x in (248.0, 264.0):
        c.ellipse(x, 286.5, 4.2, 2.4, SKIN_LINE, alpha=200)
    c.line(
        [(242.0, 284.0), (250.0, 290.0), (262.0, 290.0), (270.0, 284.0)], SKIN_LINE, 1.2, alpha=130
    )
    c.ellipse(256, 278, 5, 4, (244, 198, 172), alpha=160, blur=1.5)
    for _ in range(28):
        x, y = rng.gauss(256, 26), rng.gauss(268, 9)
        if abs(x - 256) < 6 and y > 276:
            continue
        c.ellipse(
            x,
            y,
            rng.uniform(0.9, 1.6),
            rng.uniform(0.9, 1.5),
            (186, 116, 84),
            alpha=rng.randint(110, 180),
        )

    # Lips: upper, lower, the seam, a highlight.
    c.polygon(_closed(g.lips_outer_upper, g.lips_inner_upper), LIP_UPPER)
    c.polygon([*g.lips_inner_lower, *reversed(g.lips_outer_lower)], LIP_LOWER)
    c.line(list(g.lips_inner_upper), LIP_SEAM, 1.6)
    c.ellipse(260, 319.5, 9, 2.2, (226, 150, 138), alpha=150, blur=1.0)
    c.line([(246.0, 335.0), (266.0, 335.0)], SKIN_SHADE, 1.6, alpha=90, blur=1.5)

    image = np.asarray(c.rgb(), dtype=np.uint8)
    return Portrait(image=image, geometry=g)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draw the sample twin's illustrated portrait.")
    parser.add_argument("dest", type=Path, help="where to write the PNG (and its .json)")
    args = parser.parse_args(argv)
    portrait = draw_juniper()
    sidecar = portrait.save(args.dest)
    print(f"wrote {args.dest} and {sidecar}")


if __name__ == "__main__":
    main()
