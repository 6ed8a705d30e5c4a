"""The session's media: one clock, the twin's outgoing voice, its face, the guest's voice in.

Everything is stamped from one `MediaClock`: audio sample n plays at clock time n / 48 kHz,
video frame k is on screen from k / fps until the next and shows the face at the middle of
that time, (k + 1/2) / fps, so the mouth moves with the sound.
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
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.utils import uint16_add

from twincast_shared.contract import GUEST_FRAME_MS, GUEST_SAMPLE_RATE, PcmChunk

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
FRAME_SAMPLES = SAMPLE_RATE // 50
VIDEO_CLOCK = 90_000
GUEST_FRAME_BYTES = GUEST_SAMPLE_RATE * GUEST_FRAME_MS // 1000 * 2
RESUME_FADE = SAMPLE_RATE // 400  # 2.5 ms fade-in where paused speech resumes, so no click


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
    queue has run dry; `flush` drops everything not yet sent. `pause` stops the voice at the
    next unsent frame and keeps what is queued; `resume` plays it on from where it stopped,
    every sample of it, later by as long as the pause lasted.
    """

    def __init__(self, *, clock: MediaClock) -> None:
        self._clock = clock
        self._segments: deque[_Segment] = deque()
        self.emitted = 0
        self.paused_at: int | None = None
        self._levels: deque[float] = deque(maxlen=25)

    def present(self) -> int:
        """The first whole frame that has not started playing yet."""
        return -(-int(self._clock.now() * SAMPLE_RATE) // FRAME_SAMPLES) * FRAME_SAMPLES

    @property
    def queued_until(self) -> int:
        return self._segments[-1].end if self._segments else self.emitted

    @property
    def speaking(self) -> bool:
        """Speech is playing or queued (paused speech included)."""
        return bool(self._segments)

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def recent_rms(self) -> float:
        """The loudest outgoing 20 ms frame of the last half second (PCM16 RMS)."""
        return max(self._levels, default=0.0)

    def schedule(self, samples: np.ndarray, *, tag: str) -> int:
        floor = self.paused_at if self.paused_at is not None else max(self.emitted, self.present())
        start = max(self._segments[-1].end if self._segments else floor, floor)
        if len(samples):
            self._segments.append(_Segment(start, samples, tag))
        return start

    def unsent(self) -> list[str]:
        """Tags of the speech not yet sent in full, in the order it would have played."""
        paused = self.paused_at is not None  # paused speech is all unsent
        return list(dict.fromkeys(s.tag for s in self._segments if paused or s.end > self.emitted))

    def flush(self) -> int:
        """Drops the unsent speech (paused speech too); returns how many samples were dropped."""
        if self.paused_at is not None:
            dropped = sum(len(seg.samples) for seg in self._segments)
        else:
            dropped = sum(max(0, seg.end - max(seg.start, self.emitted)) for seg in self._segments)
        self._segments.clear()
        self.paused_at = None
        return dropped

    def pause(self) -> int:
        """Stops the voice before the next frame sent; returns the first sample held back."""
        if self.paused_at is not None:
            return self.paused_at
        at = self.emitted
        while self._segments and self._segments[0].end <= at:
            self._segments.popleft()
        if self._segments and self._segments[0].start < at:
            seg = self._segments[0]
            self._segments[0] = _Segment(at, seg.samples[at - seg.start :], seg.tag, heard=True)
        self.paused_at = at
        return at

    def resume(self) -> int:
        """Plays the paused speech on from the next frame; returns how many samples it moved."""
        if self.paused_at is None:
            return 0
        shift = max(0, self.emitted - self.paused_at)
        self.paused_at = None
        for i, seg in enumerate(self._segments):
            samples = seg.samples
            if i == 0 and len(samples):
                ramp = min(RESUME_FADE, len(samples))
                samples = samples.copy()
                gain = np.linspace(0.0, 1.0, ramp, endpoint=False, dtype=np.float32)
                samples[:ramp] = (samples[:ramp] * gain).astype(np.int16)
            self._segments[i] = _Segment(seg.start + shift, samples, seg.tag, heard=seg.heard)
        return shift

    def pull(self, n: int, heard: list[str] | None = None) -> np.ndarray | None:
        """The next `n` samples, or None when nothing is said in them.

        Tags of segments whose first sample is in these `n` go into `heard`.
        """
        begin, end = self.emitted, self.emitted + n
        self.emitted = end
        out: np.ndarray | None = None
        if self.paused_at is not None:
            self._levels.append(0.0)
            return None
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
        if out is None:
            self._levels.append(0.0)
        else:
            pcm = out.astype(np.float32)
            self._levels.append(float(np.sqrt(np.mean(pcm * pcm))))
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
        frame = self._source(t + 0.5 / self._fps, pts)
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class InOrderAudioBuffer(JitterBuffer):
    """An audio jitter buffer that holds nothing back: each packet goes out once it is next.

    aiortc's buffer only knows a frame is complete when a packet of the next one arrives, so
    even with no prefetch it keeps every packet until the next (20 ms). An audio RTP packet
    is always one whole frame, so it can go to the decoder at once. A gap waits for the
    missing packet until `skip_after` later ones are here, then counts it as lost; a packet
    older than the one due is dropped (aiortc's `add` does that).
    """

    def __init__(self, *, capacity: int = 16, skip_after: int = 3) -> None:
        super().__init__(capacity=capacity, prefetch=0)
        self._skip_after = skip_after

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None
        slot = self._origin % self.capacity
        if self._packets[slot] is None:
            if uint16_add(sequence_number, -self._origin) < self._skip_after:
                return None
            while self._packets[self._origin % self.capacity] is None:
                self.remove(1)
            slot = self._origin % self.capacity
        packet = self._packets[slot]
        assert packet is not None
        self.remove(1)
        return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


def set_audio_prefetch(pc: RTCPeerConnection, frames: int) -> None:
    """How many 20 ms packets aiortc holds before it plays out received audio (it uses 4).

    Speech recognition needs packets in order, not smooth playout: waiting 80 ms for jitter
    that loopback and good links do not have only delays every transcript and barge-in.
    `frames=0` hands each packet over as soon as it is next in order (`InOrderAudioBuffer`);
    otherwise a frame is played once `frames` more have arrived after it.
    """
    for receiver in pc.getReceivers():
        if getattr(receiver, "_RTCRtpReceiver__kind", None) == "audio":
            buffer = (
                InOrderAudioBuffer(capacity=16)
                if frames == 0
                else JitterBuffer(capacity=16, prefetch=frames)
            )
            receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]


class GuestAudioPump:
    """The guest's microphone, from a WebRTC track to 20 ms PCM16 16 kHz chunks.

    `hear` sees each chunk before it goes on the bus (the barge-in guard's voice detector).
    """

    def __init__(
        self,
        *,
        track: MediaStreamTrack,
        stream: str,
        publish: Callable[[PcmChunk], Awaitable[None]],
        hear: Callable[[bytes], None] | None = None,
    ) -> None:
        self._track = track
        self._stream = stream
        self._publish = publish
        self._hear = hear
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=GUEST_SAMPLE_RATE)
        self._pending = bytearray()
        self._primed = False
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
                    pcm = bytes(out.planes[0])[: out.samples * 2]
                    if not self._primed and pcm:
                        # The resampler's filter holds back a few samples of the first frame
                        # (304 of 320 at 48 -> 16 kHz); without these few of silence in front,
                        # every 20 ms chunk would wait for the next frame to be complete.
                        self._primed = True
                        self._pending += bytes((-len(pcm)) % GUEST_FRAME_BYTES)
                    self._pending += pcm
                while len(self._pending) >= GUEST_FRAME_BYTES:
                    part = bytes(self._pending[:GUEST_FRAME_BYTES])
                    del self._pending[:GUEST_FRAME_BYTES]
                    if self._hear is not None:
                        self._hear(part)
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
