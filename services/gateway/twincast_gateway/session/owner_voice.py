"""The owner's microphone from their console: 20 ms frames at 48 kHz for the guest, the same
at 16 kHz for transcription, and a mouth shape for each frame from its loudness."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from twincast_gateway.session.media import FRAME_SAMPLES, SAMPLE_RATE
from twincast_shared.contract import GUEST_SAMPLE_RATE

OWNER_FRAME_S: Final = FRAME_SAMPLES / SAMPLE_RATE
# RMS of PCM16 below which a frame is silence; above, louder frames open the mouth wider.
_LEVELS: Final = ((4_000.0, "aa"), (2_000.0, "E"), (1_000.0, "ih"), (400.0, "DD"))

OwnerFrame = Callable[[np.ndarray, np.ndarray], Awaitable[None]]


def viseme_for(frame: np.ndarray) -> str | None:
    """The mouth shape for one frame of the owner's voice, or None when it is silent."""
    if frame.size == 0:
        return None
    rms = float(np.sqrt(np.mean(frame.astype(np.float32) ** 2)))
    for floor, viseme in _LEVELS:
        if rms >= floor:
            return viseme
    return None


class OwnerVoicePump:
    """Reads the console's audio track and hands every 20 ms frame to `on_frame` as
    (48 kHz samples, 16 kHz samples), both PCM16 mono."""

    def __init__(self, *, track: MediaStreamTrack, on_frame: OwnerFrame) -> None:
        self._track = track
        self._on_frame = on_frame
        self._out = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._stt = av.AudioResampler(format="s16", layout="mono", rate=GUEST_SAMPLE_RATE)
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_stt = np.zeros(0, dtype=np.int16)

    async def run(self) -> None:
        stt_frame = GUEST_SAMPLE_RATE // 50
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            self._pending = np.concatenate([self._pending, *_samples(self._out.resample(frame))])
            self._pending_stt = np.concatenate(
                [self._pending_stt, *_samples(self._stt.resample(frame))]
            )
            while len(self._pending) >= FRAME_SAMPLES and len(self._pending_stt) >= stt_frame:
                out, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
                stt, self._pending_stt = (
                    self._pending_stt[:stt_frame],
                    self._pending_stt[stt_frame:],
                )
                await self._on_frame(out, stt)


def _samples(frames: list[av.AudioFrame]) -> list[np.ndarray]:
    return [f.to_ndarray().reshape(-1).astype(np.int16) for f in frames]
