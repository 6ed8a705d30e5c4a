"""Where the parts of a face are in its portrait: the few contours the renderer animates.

Coordinates are pixels of the portrait image, x to the right and y down. "left" and "right"
are as seen in the image (the image-left eye is the person's right eye). Every contour runs
from image-left to image-right; lid and lip contours start and end at the corners.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

FORMAT: Final = "twincast.face/1"

Point = tuple[float, float]
Contour = tuple[Point, ...]


class PortraitError(ValueError):
    """A portrait (image or face geometry) that cannot be used, with the reason."""


@dataclass(frozen=True, slots=True)
class Iris:
    x: float
    y: float
    radius: float


# Minimum points per contour: what the renderer needs to interpolate a curve.
_MIN_POINTS: Final = {
    "oval": 8,
    "lips_outer_upper": 3,
    "lips_outer_lower": 3,
    "lips_inner_upper": 3,
    "lips_inner_lower": 3,
    "eye_left_upper": 3,
    "eye_left_lower": 3,
    "eye_right_upper": 3,
    "eye_right_lower": 3,
    "brow_left": 2,
    "brow_right": 2,
}


@dataclass(frozen=True, slots=True)
class FaceGeometry:
    """The animated parts of one face, in the pixel coordinates of its image."""

    width: int
    height: int
    source: str
    oval: Contour
    lips_outer_upper: Contour
    lips_outer_lower: Contour
    lips_inner_upper: Contour
    lips_inner_lower: Contour
    eye_left_upper: Contour
    eye_left_lower: Contour
    eye_right_upper: Contour
    eye_right_lower: Contour
    brow_left: Contour
    brow_right: Contour
    iris_left: Iris
    iris_right: Iris
    nose_tip: Point

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise PortraitError(f"face geometry: bad image size {self.width}x{self.height}")
        for name, least in _MIN_POINTS.items():
            contour: Contour = getattr(self, name)
            if len(contour) < least:
                raise PortraitError(f"face geometry: {name} needs at least {least} points")
            for x, y in contour:
                if not (math.isfinite(x) and math.isfinite(y)):
                    raise PortraitError(f"face geometry: {name} has a non-finite point")
        for iris in (self.iris_left, self.iris_right):
            if not (iris.radius > 0 and math.isfinite(iris.x) and math.isfinite(iris.y)):
                raise PortraitError("face geometry: bad iris")
        if self.mouth_width <= 0 or self.face_height <= 0:
            raise PortraitError("face geometry: degenerate face (zero-size mouth or face)")

    @property
    def mouth_left(self) -> Point:
        return self.lips_outer_upper[0]

    @property
    def mouth_right(self) -> Point:
        return self.lips_outer_upper[-1]

    @property
    def mouth_width(self) -> float:
        (x0, y0), (x1, y1) = self.mouth_left, self.mouth_right
        return math.hypot(x1 - x0, y1 - y0)

    @property
    def face_box(self) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 of the face oval (forehead to chin, not the hair)."""
        xs = [p[0] for p in self.oval]
        ys = [p[1] for p in self.oval]
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def face_height(self) -> float:
        _, y0, _, y1 = self.face_box
        return y1 - y0

    def mapped(
        self, fn: Callable[[float, float], Point], *, width: int, height: int, scale: float
    ) -> FaceGeometry:
        """The same face after a similarity transform of its image (`fn` maps points)."""
        changes: dict[str, Any] = {"width": width, "height": height}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _MIN_POINTS:
                changes[f.name] = tuple(fn(x, y) for x, y in value)
            elif isinstance(value, Iris):
                x, y = fn(value.x, value.y)
                changes[f.name] = Iris(x=x, y=y, radius=value.radius * scale)
        changes["nose_tip"] = fn(*self.nose_tip)
        values = {f.name: changes.get(f.name, getattr(self, f.name)) for f in fields(self)}
        return FaceGeometry(**values)

    def cropped_scaled(
        self, *, x0: float, y0: float, scale: float, width: int, height: int
    ) -> FaceGeometry:
        """The face in an image cropped at (x0, y0) and then resized by `scale`."""
        return self.mapped(
            lambda x, y: ((x - x0) * scale, (y - y0) * scale),
            width=width,
            height=height,
            scale=scale,
        )

    def to_json(self) -> str:
        points: dict[str, list[list[float]]] = {
            name: [[round(x, 2), round(y, 2)] for x, y in getattr(self, name)]
            for name in _MIN_POINTS
        }
        doc = {
            "format": FORMAT,
            "image_size": [self.width, self.height],
            "source": self.source,
            "iris_left": _iris_json(self.iris_left),
            "iris_right": _iris_json(self.iris_right),
            "nose_tip": [round(self.nose_tip[0], 2), round(self.nose_tip[1], 2)],
        }
        # One line per contour: readable in a diff, small on disk.
        head = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items()]
        body = [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in points.items()]
        contours = '  "contours": {\n' + ",\n".join(body) + "\n  }"
        return "{\n" + ",\n".join([*head, contours]) + "\n}"

    @classmethod
    def from_json(cls, text: str) -> FaceGeometry:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PortraitError(f"face geometry is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise PortraitError(f"face geometry: expected format {FORMAT!r}")
        try:
            width, height = (int(v) for v in doc["image_size"])
            contours: Mapping[str, Any] = doc["contours"]
            values: dict[str, Any] = {
                name: tuple((float(x), float(y)) for x, y in contours[name]) for name in _MIN_POINTS
            }
            nose_x, nose_y = (float(v) for v in doc["nose_tip"])
            return cls(
                width=width,
                height=height,
                source=str(doc.get("source", "unknown")),
                iris_left=_iris_from(doc["iris_left"]),
                iris_right=_iris_from(doc["iris_right"]),
                nose_tip=(nose_x, nose_y),
                **values,
            )
        except PortraitError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise PortraitError(f"face geometry: missing or malformed field ({exc!r})") from exc


def _iris_json(iris: Iris) -> list[float]:
    return [round(iris.x, 2), round(iris.y, 2), round(iris.radius, 2)]


def _iris_from(value: Any) -> Iris:
    x, y, r = (float(v) for v in value)
    return Iris(x=x, y=y, radius=r)
