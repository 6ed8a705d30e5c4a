"""Face landmarks of a portrait photo, found once when the twin is created (MediaPipe face mesh).

MediaPipe is an optional extra (`twincast[faces]`): only this module's `find_landmarks`
imports it, so the runtime renders from the saved geometry without it.
"""

from __future__ import annotations

import importlib
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from twincast_gateway.avatar.geometry import FaceGeometry, Iris, PortraitError

INSTALL_HINT: Final = "pip install 'twincast[faces]'"
MIN_FACE_PX: Final = 64

# MediaPipe face mesh indices (478 points with refine_landmarks), image-left to image-right.
OVAL: Final = (
    *(10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288),
    *(397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136),
    *(172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109),
)
LIPS_OUTER_UPPER: Final = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER: Final = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER: Final = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER: Final = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
EYE_LEFT_UPPER: Final = (33, 246, 161, 160, 159, 158, 157, 173, 133)
EYE_LEFT_LOWER: Final = (33, 7, 163, 144, 145, 153, 154, 155, 133)
EYE_RIGHT_UPPER: Final = (362, 398, 384, 385, 386, 387, 388, 466, 263)
EYE_RIGHT_LOWER: Final = (362, 382, 381, 380, 374, 373, 390, 249, 263)
BROW_LEFT: Final = (70, 63, 105, 66, 107)
BROW_RIGHT: Final = (336, 296, 334, 293, 300)
IRIS_LEFT: Final = (468, 469, 470, 471, 472)
IRIS_RIGHT: Final = (473, 474, 475, 476, 477)
NOSE_TIP: Final = 1


class FaceNotFoundError(PortraitError):
    """The photo has no face the landmark model can find."""


class LandmarksUnavailableError(PortraitError):
    """MediaPipe, needed only to create a portrait from a photo, is not installed."""


def as_rgb(image: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """A C-contiguous HxWx3 uint8 array, or a clear error."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise PortraitError(
            f"portrait image must be HxWx3 uint8 RGB, got {array.shape} {array.dtype}"
        )
    return np.ascontiguousarray(array[:, :, :3])


def find_landmarks(image: npt.ArrayLike) -> FaceGeometry:
    """The face geometry of the one face in an RGB photo (MediaPipe face mesh, static mode)."""
    rgb = as_rgb(image)
    try:
        mediapipe = importlib.import_module("mediapipe")
    except ImportError as exc:
        raise LandmarksUnavailableError(
            f"finding face landmarks in a photo needs MediaPipe: {INSTALL_HINT}"
        ) from exc
    height, width = rgb.shape[:2]
    with mediapipe.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True
    ) as mesh:
        result = mesh.process(rgb)
    faces = result.multi_face_landmarks
    if not faces:
        raise FaceNotFoundError(
            "no face found in the photo: use a clear, front-facing photo of one person"
        )
    points = np.array([(p.x * width, p.y * height) for p in faces[0].landmark], dtype=np.float64)
    if len(points) < 478:
        raise LandmarksUnavailableError(
            f"MediaPipe returned {len(points)} landmarks, expected 478 (refine_landmarks)"
        )
    geometry = geometry_from_mesh(points, width=width, height=height)
    if geometry.face_height < MIN_FACE_PX:
        raise FaceNotFoundError(
            f"the face is too small ({geometry.face_height:.0f} px tall): use a photo where "
            f"the face is at least {MIN_FACE_PX} px tall"
        )
    return geometry


def geometry_from_mesh(points: npt.NDArray[np.float64], *, width: int, height: int) -> FaceGeometry:
    """Face geometry from the 478 face-mesh points, in pixels."""

    def contour(indices: tuple[int, ...]) -> tuple[tuple[float, float], ...]:
        return tuple((float(points[i, 0]), float(points[i, 1])) for i in indices)

    def iris(indices: tuple[int, ...]) -> Iris:
        cx, cy = points[indices[0]]
        rim = points[list(indices[1:])]
        radius = float(np.mean(np.hypot(rim[:, 0] - cx, rim[:, 1] - cy)))
        return Iris(x=float(cx), y=float(cy), radius=max(radius, 1.0))

    nose_x, nose_y = points[NOSE_TIP]
    if not all(math.isfinite(v) for v in (nose_x, nose_y)):
        raise FaceNotFoundError("face landmarks are not finite")
    return FaceGeometry(
        width=width,
        height=height,
        source="mediapipe-face-mesh",
        oval=contour(OVAL),
        lips_outer_upper=contour(LIPS_OUTER_UPPER),
        lips_outer_lower=contour(LIPS_OUTER_LOWER),
        lips_inner_upper=contour(LIPS_INNER_UPPER),
        lips_inner_lower=contour(LIPS_INNER_LOWER),
        eye_left_upper=contour(EYE_LEFT_UPPER),
        eye_left_lower=contour(EYE_LEFT_LOWER),
        eye_right_upper=contour(EYE_RIGHT_UPPER),
        eye_right_lower=contour(EYE_RIGHT_LOWER),
        brow_left=contour(BROW_LEFT),
        brow_right=contour(BROW_RIGHT),
        iris_left=iris(IRIS_LEFT),
        iris_right=iris(IRIS_RIGHT),
        nose_tip=(float(nose_x), float(nose_y)),
    )
