"""The owner's portrait: an RGB image and its face geometry, saved side by side.

`portrait.png` keeps its geometry in `portrait.json` next to it, so a running gateway loads
both without MediaPipe; the landmarks are found once, by `create_portrait`, when the twin is
created.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from twincast_gateway.avatar.geometry import FaceGeometry, PortraitError
from twincast_gateway.avatar.landmarks import as_rgb, find_landmarks

MAX_SIDE: Final = 1024
MAX_PIXELS: Final = 60_000_000


def sidecar_path(image_path: Path) -> Path:
    """Where the face geometry of the portrait image at `image_path` lives."""
    return image_path.with_suffix(".json")


@dataclass(frozen=True, slots=True, eq=False)
class Portrait:
    """An RGB portrait (HxWx3 uint8, read-only) with the geometry of its face."""

    image: npt.NDArray[np.uint8]
    geometry: FaceGeometry

    def __post_init__(self) -> None:
        rgb = as_rgb(self.image)
        rgb.setflags(write=False)
        object.__setattr__(self, "image", rgb)
        height, width = rgb.shape[:2]
        if (width, height) != (self.geometry.width, self.geometry.height):
            raise PortraitError(
                f"face geometry is for a {self.geometry.width}x{self.geometry.height} image, "
                f"the portrait is {width}x{height}"
            )

    @property
    def width(self) -> int:
        return self.geometry.width

    @property
    def height(self) -> int:
        return self.geometry.height

    @classmethod
    def from_photo(cls, photo: npt.ArrayLike) -> Portrait:
        """A portrait from an RGB photo, its landmarks found by MediaPipe."""
        rgb = _downscaled(as_rgb(photo))
        return cls(image=rgb, geometry=find_landmarks(rgb))

    @classmethod
    def load(cls, path: Path | str) -> Portrait:
        """The portrait image at `path` with the geometry saved next to it."""
        path = Path(path)
        geometry_path = sidecar_path(path)
        if not geometry_path.is_file():
            raise PortraitError(
                f"no face geometry for {path}: expected {geometry_path} "
                "(create the portrait from a photo with create_portrait)"
            )
        try:
            text = geometry_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PortraitError(f"cannot read {geometry_path}: {exc}") from exc
        return cls(image=read_image(path), geometry=FaceGeometry.from_json(text))

    def save(self, path: Path | str) -> Path:
        """Write the image as PNG at `path` and its geometry beside it; returns the JSON path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.image).save(path, format="PNG", optimize=True)
        geometry_path = sidecar_path(path)
        geometry_path.write_text(self.geometry.to_json() + "\n", encoding="utf-8")
        return geometry_path


def read_image(source: Path | str | bytes) -> npt.NDArray[np.uint8]:
    """An image file (or its bytes) as RGB, upright per its EXIF orientation; clear errors."""
    name = "image bytes" if isinstance(source, bytes) else str(source)
    try:
        opened = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        with opened as image:
            if image.width * image.height > MAX_PIXELS:
                raise PortraitError(f"{name}: image too large ({image.width}x{image.height})")
            image.load()
            upright = ImageOps.exif_transpose(image)
            return np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except PortraitError:
        raise
    except FileNotFoundError as exc:
        raise PortraitError(f"no such image: {name}") from exc
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
        SyntaxError,
    ) as exc:
        raise PortraitError(
            f"cannot read {name} as an image (corrupt or unsupported): {exc}"
        ) from exc


def create_portrait(photo: Path | str | bytes, dest: Path | str) -> Portrait:
    """Twin creation: find the face in `photo` once and save the portrait (PNG + JSON) at `dest`."""
    portrait = Portrait.from_photo(read_image(photo))
    portrait.save(dest)
    return portrait


def _downscaled(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    height, width = rgb.shape[:2]
    side = max(width, height)
    if side <= MAX_SIDE:
        return rgb
    scale = MAX_SIDE / side
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)
