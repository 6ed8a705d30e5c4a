"""The twin's face: portrait and landmarks, animation timing, frames in yuv420p.

No broker and no WebRTC here: the gateway feeds an `Animator` (visemes, barge-in, mood,
energy) and asks a `Renderer` for one `av.VideoFrame` per video tick.
"""

from twincast_gateway.avatar.animator import (
    EXPRESSIONS,
    VISEME_SHAPES,
    Animator,
    FaceState,
    Head,
    MouthShape,
    Speaker,
    VisemeSpan,
    expression_for,
    visemes_from_track,
)
from twincast_gateway.avatar.geometry import FaceGeometry, Iris, PortraitError
from twincast_gateway.avatar.landmarks import (
    INSTALL_HINT,
    FaceNotFoundError,
    LandmarksUnavailableError,
    find_landmarks,
)
from twincast_gateway.avatar.portrait import Portrait, create_portrait, read_image, sidecar_path
from twincast_gateway.avatar.renderer import (
    FPS,
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
    PortraitRenderer,
    Renderer,
)
from twincast_gateway.avatar.rig import DEFAULT_SIZE, FaceRig

__all__ = [
    "DEFAULT_SIZE",
    "EXPRESSIONS",
    "FPS",
    "INSTALL_HINT",
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "VISEME_SHAPES",
    "Animator",
    "FaceGeometry",
    "FaceNotFoundError",
    "FaceRig",
    "FaceState",
    "Head",
    "Iris",
    "LandmarksUnavailableError",
    "MouthShape",
    "Portrait",
    "PortraitError",
    "PortraitRenderer",
    "Renderer",
    "Speaker",
    "VisemeSpan",
    "create_portrait",
    "expression_for",
    "find_landmarks",
    "read_image",
    "sidecar_path",
    "visemes_from_track",
]
