"""Which face a session shows. TEMPORARY: a plain face until the portrait renderer lands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import av
import numpy as np

from twincast_gateway.live import Face
from twincast_shared.contract import AnimationFrame, HeadPose
from twincast_shared.store import StateStore
from twincast_shared.twins import TwinProfile

SIZE = 256


class _PlainFace:
    def __init__(self) -> None:
        self._visemes: list[tuple[str, float, float]] = []
        self._base = np.full((SIZE * 3 // 2, SIZE), 128, dtype=np.uint8)
        self._base[:SIZE] = 90

    def speak(self, visemes: Sequence[tuple[str, float, float]], *, start_s: float) -> None:
        self._visemes += [(v, start_s + a, start_s + b) for v, a, b in visemes]

    def flush(self, at_s: float) -> None:
        self._visemes = [v for v in self._visemes if v[2] <= at_s]

    def set_mood(self, *, label: str, valence: float, arousal: float) -> None:
        pass

    def set_energy(self, energy: float) -> None:
        pass

    def frame(self, t: float, pts: int) -> tuple[av.VideoFrame, AnimationFrame]:
        viseme = next((v for v, a, b in self._visemes if a <= t < b), "sil")
        opening = 0.0 if viseme in ("sil", "PP") else 0.8
        img = self._base.copy()
        img[: SIZE // 8, int(t * 25) % SIZE] = 200
        h = int(opening * 30)
        img[170 : 172 + h, 100:156] = 20
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        animation = AnimationFrame(
            session_id="x",
            t_ms=t * 1000,
            speaker="twin" if opening else "none",
            viseme=viseme,
            mouth_open=opening,
            expression="neutral",
            expression_weight=0.0,
            blink=0.0,
            head=HeadPose(),
            energy=0.5,
        )
        return frame, animation


def portrait_face_factory(
    store: StateStore, *, fps: int
) -> Callable[[TwinProfile], Awaitable[Face]]:
    async def make(profile: TwinProfile) -> Face:
        return _PlainFace()

    return make


def mouth_box_for(twin: str) -> tuple[int, int, int, int] | None:
    return (100, 168, 156, 204)
