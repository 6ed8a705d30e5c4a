"""The session's media: one clock, the twin's outgoing voice, its face, the guest's voice in.

Everything is stamped from one `MediaClock`: audio sample n plays at clock time n / 48 kHz,
video frame k shows the face at k / fps, so the mouth moves with the sound.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from twincast_shared.contract import GUEST_FRAME_MS, GUEST_SAMPLE_RATE, PcmChunk

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
FRAME_SAMPLES = SAMPLE_RATE // 50
VIDEO_CLOCK = 90_000
GUEST_FRAME_BYTES = GUEST_SAMPLE_RATE * GUEST_FRAME_MS // 1000 * 2


class MediaClock:
    """Seconds since the session's media started, on the host's monotonic clock."""

    def __init__(self) -> None:
        self.origin = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.origin

    async def sleep_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            await asyncio.sleep(delay)


class StreamResampler:
    """PCM16 mono streams → 48 kHz, one resampler per stream for its whole life.

    A reply arrives in chunks that end mid-word; resampling each chunk on its own leaves a
    small step at every join, which is audible. One filter state per stream leaves none.
    """

    def __init__(self, *, max_streams: int = 16) -> None:
        self._streams: dict[str, av.AudioResampler] = {}
        self._max = max_streams

    def convert(self, stream: str, pcm: bytes, rate: int, *, last: bool) -> np.ndarray:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        if rate == SAMPLE_RATE:
            return samples
        resampler = self._streams.get(stream)
        if resampler is None:
            resampler = self._streams[stream] = av.AudioResampler(
                format="s16", layout="mono", rate=SAMPLE_RATE
            )
            while len(self._streams) > self._max:
                del self._streams[next(iter(self._streams))]
        frames: list[av.AudioFrame] = []
        if samples.size:
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            frames += resampler.resample(frame)
        if last:
            frames += resampler.resample(None)
            del self._streams[stream]
        if not frames:
            return samples[:0]
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16)


@dataclass(slots=True)
class _Segment:
    start: int
    samples: np.ndarray
    tag: str
    heard: bool = False

    @property
    def end(self) -> int:
        return self.start + len(self.samples)


class SpeechOut:
    """What the twin will say, placed on the session's sample timeline at 48 kHz.

    New speech starts where the queued speech ends, or at the next frame to be sent if the
    queue has run dry; `flush` drops everything not yet sent.
    """

    def __init__(self, *, clock: MediaClock) -> None:
        self._clock = clock
        self._segments: deque[_Segment] = deque()
        self.emitted = 0

    def present(self) -> int:
        """The first whole frame that has not started playing yet."""
        return -(-int(self._clock.now() * SAMPLE_RATE) // FRAME_SAMPLES) * FRAME_SAMPLES

    @property
    def queued_until(self) -> int:
        return self._segments[-1].end if self._segments else self.emitted

    @property
    def speaking(self) -> bool:
        return bool(self._segments)

    def schedule(self, samples: np.ndarray, *, tag: str) -> int:
        start = max(self.queued_until, self.emitted, self.present())
        if len(samples):
            self._segments.append(_Segment(start, samples, tag))
        return start

    def unsent(self) -> list[str]:
        """Tags of the speech not yet sent in full, in the order it would have played."""
        return list(dict.fromkeys(s.tag for s in self._segments if s.end > self.emitted))

    def flush(self) -> int:
        """Drops the unsent speech; returns how many samples were dropped."""
        dropped = sum(max(0, seg.end - max(seg.start, self.emitted)) for seg in self._segments)
        self._segments.clear()
        return dropped

    def pull(self, n: int, heard: list[str] | None = None) -> np.ndarray | None:
        """The next `n` samples, or None when nothing is said in them.

        Tags of segments whose first sample is in these `n` go into `heard`.
        """
        begin, end = self.emitted, self.emitted + n
        self.emitted = end
        out: np.ndarray | None = None
        while self._segments and self._segments[0].end <= begin:
            self._segments.popleft()
        for seg in self._segments:
            if seg.start >= end:
                break
            lo, hi = max(seg.start, begin), min(seg.end, end)
            if out is None:
                out = np.zeros(n, dtype=np.int16)
            out[lo - begin : hi - begin] = seg.samples[lo - seg.start : hi - seg.start]
            if not seg.heard:
                seg.heard = True
                if heard is not None:
                    heard.append(seg.tag)
        while self._segments and self._segments[0].end <= end:
            self._segments.popleft()
        return out


class TwinAudioTrack(MediaStreamTrack):
    """The twin's voice: 20 ms frames at 48 kHz, paced by the media clock, silence between."""

    kind = "audio"

    def __init__(
        self,
        *,
        clock: MediaClock,
        speech: SpeechOut,
        on_sound: Callable[[list[str]], None] | None = None,
    ) -> None:
        super().__init__()
        self._clock = clock
        self._speech = speech
        self._on_sound = on_sound
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._started = False

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._started:
            self._speech.emitted = max(self._speech.emitted, self._speech.present())
            self._started = True
        pts = self._speech.emitted
        await self._clock.sleep_until(pts / SAMPLE_RATE)
        heard: list[str] = []
        samples = self._speech.pull(FRAME_SAMPLES, heard)
        if heard and self._on_sound is not None:
            self._on_sound(heard)
        frame = av.AudioFrame.from_ndarray(
            (samples if samples is not None else self._silence).reshape(1, -1),
            format="s16",
            layout="mono",
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


class FrameSource(Protocol):
    def __call__(self, t: float, pts: int) -> av.VideoFrame: ...


class AvatarVideoTrack(MediaStreamTrack):
    """The face at `fps`; a frame that would be late is skipped, never sent behind the voice."""

    kind = "video"

    def __init__(self, *, clock: MediaClock, fps: int, source: FrameSource) -> None:
        super().__init__()
        self._clock = clock
        self._fps = fps
        self._source = source
        self._index = -1

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        due_index = int(self._clock.now() * self._fps)
        self._index = max(self._index + 1, due_index)
        t = self._index / self._fps
        await self._clock.sleep_until(t)
        pts = self._index * VIDEO_CLOCK // self._fps
        frame = self._source(t, pts)
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


def set_audio_prefetch(pc: RTCPeerConnection, frames: int) -> None:
    """How many 20 ms packets aiortc holds before it plays out received audio (it uses 4).

    Speech recognition needs packets in order, not smooth playout: waiting 80 ms for jitter
    that loopback and good links do not have only delays every transcript and barge-in.
    """
    for receiver in pc.getReceivers():
        if getattr(receiver, "_RTCRtpReceiver__kind", None) == "audio":
            receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(  # type: ignore[attr-defined]
                capacity=16, prefetch=frames
            )


class GuestAudioPump:
    """The guest's microphone, from a WebRTC track to 20 ms PCM16 16 kHz chunks."""

    def __init__(
        self,
        *,
        track: MediaStreamTrack,
        stream: str,
        publish: Callable[[PcmChunk], Awaitable[None]],
    ) -> None:
        self._track = track
        self._stream = stream
        self._publish = publish
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=GUEST_SAMPLE_RATE)
        self._pending = bytearray()
        self._seq = 0

    async def run(self) -> None:
        try:
            while True:
                try:
                    frame = await self._track.recv()
                except MediaStreamError:
                    break
                if not isinstance(frame, av.AudioFrame):
                    continue
                for out in self._resampler.resample(frame):
                    self._pending += bytes(out.planes[0])[: out.samples * 2]
                while len(self._pending) >= GUEST_FRAME_BYTES:
                    part = bytes(self._pending[:GUEST_FRAME_BYTES])
                    del self._pending[:GUEST_FRAME_BYTES]
                    await self._send(part, last=False)
        finally:
            if self._seq:
                await self._send(b"", last=True)

    async def _send(self, pcm: bytes, *, last: bool) -> None:
        chunk = PcmChunk(
            pcm=pcm, sample_rate=GUEST_SAMPLE_RATE, seq=self._seq, stream=self._stream, last=last
        )
        self._seq += 1
        await self._publish(chunk)
