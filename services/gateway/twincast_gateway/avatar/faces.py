"""The face each session shows: the twin's portrait from the store, rigged once per twin."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import av
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from twincast_gateway.avatar import (
    DEFAULT_SIZE,
    Animator,
    FaceGeometry,
    FaceRig,
    Portrait,
    PortraitRenderer,
    Renderer,
    expression_for,
)
from twincast_gateway.session.live import Face
from twincast_shared.contract import AnimationFrame
from twincast_shared.store import StateStore, key
from twincast_shared.twins import TwinProfile

FACE_DIR = "face"
PORTRAIT_FILE = "portrait.png"
REPLY_EXPRESSION_WEIGHT = 0.6


class NoPortrait(LookupError):
    """A twin without a face; `twincast twin face <twin> <photo>` gives it one."""


class StoredPortrait(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    png_b64: str
    geometry: str


def _portrait_key(twin: str) -> str:
    return key("twin", twin, "portrait")


async def put_portrait(store: StateStore, twin: str, portrait: Portrait) -> None:
    png = io.BytesIO()
    Image.fromarray(np.asarray(portrait.image)).save(png, format="PNG", optimize=True)
    stored = StoredPortrait(
        png_b64=base64.b64encode(png.getvalue()).decode(), geometry=portrait.geometry.to_json()
    )
    await store.put(_portrait_key(twin), stored)


async def get_portrait(store: StateStore, twin: str) -> Portrait | None:
    stored = await store.get(_portrait_key(twin), StoredPortrait)
    if stored is None:
        return None
    with Image.open(io.BytesIO(base64.b64decode(stored.png_b64))) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return Portrait(image=rgb, geometry=FaceGeometry.from_json(stored.geometry))


async def seed_portrait_from_dir(store: StateStore, twin: str, twin_dir: Path) -> bool:
    """A twin folder's `face/portrait.png` (with its geometry beside it) into the store."""
    path = twin_dir / FACE_DIR / PORTRAIT_FILE
    if not path.exists():
        return False
    await put_portrait(store, twin, Portrait.load(path))
    return True


class PortraitFace:
    """A session's face: its own animator (blinks, moods, speech) over the twin's shared rig."""

    def __init__(self, *, renderer: Renderer, seed: int) -> None:
        self._renderer = renderer
        self._animator = Animator(seed=seed)

    def speak(
        self,
        visemes: Sequence[tuple[str, float, float]],
        *,
        start_s: float,
        speaker: Literal["twin", "owner"] = "twin",
    ) -> None:
        self._animator.speak(visemes, start_s, speaker=speaker)

    def flush(self, at_s: float) -> None:
        self._animator.flush(at_s)

    def hold(self, at_s: float) -> None:
        self._animator.hold(at_s)

    def resume(self, shift_s: float) -> None:
        self._animator.resume(shift_s)

    def set_mood(self, *, label: str, valence: float, arousal: float) -> None:
        self._animator.set_mood(expression_for(label, valence, arousal), valence, arousal)

    def set_energy(self, energy: float) -> None:
        self._animator.set_energy(energy)

    def express(self, expression: str) -> None:
        """The reply's own expression, which the reasoning chose for what it says."""
        self._animator.set_expression(expression, REPLY_EXPRESSION_WEIGHT)

    def frame(self, t: float, pts: int, *, session_id: str) -> tuple[av.VideoFrame, AnimationFrame]:
        state = self._animator.state(t)
        return self._renderer.render(state, pts), state.to_animation_frame(session_id=session_id)


class PortraitFaces:
    """Makes each session's face; rigs are built once per twin (seconds of CPU, off the event
    loop) and shared by every session of that twin."""

    def __init__(self, store: StateStore, *, size: int | None = None) -> None:
        self._store = store
        self._size = size
        self._rigs: dict[str, asyncio.Task[FaceRig]] = {}
        self._made = itertools.count()

    def preload(self, twin: str) -> asyncio.Task[FaceRig]:
        task = self._rigs.get(twin)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._rigs[twin] = asyncio.ensure_future(self._build(twin))
        return task

    async def __call__(self, profile: TwinProfile) -> Face:
        rig = await asyncio.shield(self.preload(profile.id))
        seed = zlib.crc32(profile.id.encode()) + next(self._made)
        return PortraitFace(renderer=PortraitRenderer(rig=rig), seed=seed)

    async def close(self) -> None:
        for task in self._rigs.values():
            task.cancel()
        await asyncio.gather(*self._rigs.values(), return_exceptions=True)
        self._rigs.clear()

    async def _build(self, twin: str) -> FaceRig:
        portrait = await get_portrait(self._store, twin)
        if portrait is None:
            raise NoPortrait(f"twin {twin!r} has no portrait: twincast twin face {twin} PHOTO")
        size = self._size or DEFAULT_SIZE
        return await asyncio.to_thread(FaceRig.build, portrait, size=size, warm=True)


def mouth_box_for(twin_dir: Path, *, size: int | None = None) -> tuple[int, int, int, int]:
    """Where the mouth is in the video frames of a twin whose face is in `twin_dir`."""
    portrait = Portrait.load(twin_dir / FACE_DIR / PORTRAIT_FILE)
    rig = FaceRig.build(portrait, size=size or DEFAULT_SIZE)
    rect, margin = rig.mouth.rect, 8
    return rect.x0 - margin, rect.y0 - margin, rect.x1 + margin, rect.y1 + margin
