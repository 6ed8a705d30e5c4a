"""A WebRTC guest without a browser (aiortc): speaks recorded audio, receives the avatar.

Used by `twincast demo`, the end-to-end benchmark and the tests. Arrival times are
time.monotonic() readings taken when a frame reaches this client. Presentation times are
what a lip-syncing receiver (a browser) plays each frame at: its RTP timestamp mapped to the
sender's wall clock through the RTCP Sender Reports of its stream (`SenderClock`); aiortc's
own receiver does no lip sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtcpSrPacket

from twincast_gateway.session.media import set_audio_prefetch

# A browser's adaptive jitter buffer holds about this much on a clean link; aiortc's own
# default is 4 packets (80 ms).
PLAYOUT_PREFETCH = 2
RATE = 48_000
FRAME = RATE // 50
SPEECH_RMS = 300.0
MOUTH_DARK_LUMA = 60
MIN_AV_CORRELATION = 0.3
NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)
ONSET_BLOCK = RATE // 400  # 2.5 ms: audio onsets are found to this
QUIET_BEFORE_ONSET_S = 0.2


class Microphone(MediaStreamTrack):
    """Plays queued utterances in real time at 48 kHz, silence in between."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: list[np.ndarray] = []
        self._current: np.ndarray | None = None
        self._offset = 0
        self._start: float | None = None
        self._sent = 0
        self._done: list[tuple[asyncio.Future[tuple[float, float]], float]] = []
        self._started_at = 0.0

    def say(self, pcm: bytes, rate: int) -> asyncio.Future[tuple[float, float]]:
        """Queues an utterance; resolves to (first, last) sample send times once it is out."""
        samples = np.frombuffer(pcm, dtype="<i2")
        if rate != RATE:
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            out = [*resampler.resample(frame), *resampler.resample(None)]
            samples = np.concatenate([f.to_ndarray().reshape(-1) for f in out])
        future: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        self._queue.append(samples.astype(np.int16))
        self._done.append((future, 0.0))
        return future

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._sent / RATE
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        out = np.zeros(FRAME, dtype=np.int16)
        if self._current is None and self._queue:
            self._current, self._offset = self._queue.pop(0), 0
            self._started_at = time.monotonic()
        if self._current is not None:
            part = self._current[self._offset : self._offset + FRAME]
            out[: len(part)] = part
            self._offset += FRAME
            if self._offset >= len(self._current):
                self._current = None
                future, _ = self._done.pop(0)
                if not future.done():
                    future.set_result((self._started_at, time.monotonic()))
        frame = av.AudioFrame.from_ndarray(out.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, RATE)
        self._sent += FRAME
        return frame


@dataclass
class SenderClock:
    """A received track's RTP clock mapped to the sender's wall clock, as a receiver that
    syncs audio and video does it: each RTCP Sender Report pairs an RTP timestamp with the
    sender's NTP time; the decoded frames' pts count RTP ticks from the first frame's."""

    rate: int
    first_rtp: int | None = None
    offsets: list[float] = field(default_factory=list)  # sender time of pts 0, per report

    def report(self, rtp_timestamp: int, ntp_timestamp: int) -> None:
        if self.first_rtp is None:
            return
        pts = (rtp_timestamp - self.first_rtp) % (1 << 32)
        ntp_s = (ntp_timestamp >> 32) + (ntp_timestamp & 0xFFFFFFFF) / (1 << 32)
        self.offsets.append(ntp_s - NTP_UNIX_OFFSET - pts / self.rate)

    def sender_time(self, pts: int) -> float | None:
        """time.time() on the sender at which a frame with this pts is to be presented."""
        if not self.offsets:
            return None
        return statistics.median(self.offsets) + pts / self.rate


def watch_sender_reports(receiver: RTCRtpReceiver, clock: SenderClock) -> None:
    """Feeds `clock` from `receiver`: the first RTP timestamp its decoder saw (pts 0 of the
    frames it hands over) and every Sender Report of its stream. aiortc keeps both inside."""
    mapper = receiver._RTCRtpReceiver__timestamp_mapper  # type: ignore[attr-defined]
    original_map = mapper.map
    original_rtcp = receiver._handle_rtcp_packet

    def map_timestamp(timestamp: int) -> int:
        if clock.first_rtp is None:
            clock.first_rtp = timestamp
        return int(original_map(timestamp))

    async def handle_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            clock.report(info.rtp_timestamp, info.ntp_timestamp)
        await original_rtcp(packet)

    mapper.map = map_timestamp
    receiver._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


@dataclass
class Received:
    """What arrived, when."""

    sound: list[float] = field(default_factory=list)
    levels: list[tuple[float, float]] = field(default_factory=list)
    frames: list[float] = field(default_factory=list)
    mouth: list[tuple[float, float]] = field(default_factory=list)
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    animation: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    # (arrival, pts, onset offset in samples or -1 if no block is loud) per audio frame
    audio_pts: list[tuple[float, int, int]] = field(default_factory=list)
    loudness: list[np.ndarray] = field(default_factory=list)  # RMS per ms, per audio frame
    video_pts: list[int] = field(default_factory=list)  # per entry of `mouth`
    audio_clock: SenderClock = field(default_factory=lambda: SenderClock(RATE))
    video_clock: SenderClock = field(default_factory=lambda: SenderClock(90_000))

    def first_sound_after(self, t: float) -> float | None:
        return next((x for x in self.sound if x >= t), None)

    def first_silence_after(self, t: float, *, frames: int = 3) -> float | None:
        """Arrival of the first of `frames` consecutive silent 20 ms frames after `t`:
        consecutive in the stream (by RTP timestamp), so a frame that never came breaks the
        run, while frames that arrive in bursts do not."""
        run: list[tuple[float, int]] = []
        for (arrival, pts, _), (_, rms) in zip(self.audio_pts, self.levels, strict=True):
            if arrival < t:
                continue
            if rms > SPEECH_RMS:
                run = []
                continue
            run = [*run, (arrival, pts)] if run and pts - run[-1][1] == FRAME else [(arrival, pts)]
            if len(run) >= frames:
                return run[0][0]
        return None


async def post_sdp(
    http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection, *, token: str
) -> tuple[int, Mapping[str, str], str]:
    """A WHIP or WHEP offer: `pc`'s local description, a join token as Bearer.

    Returns the status, headers and body (the answer SDP, or why not).
    """
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(
        url,
        data=pc.localDescription.sdp,
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
    ) as response:
        return response.status, dict(response.headers), await response.text()


def av_offset_ms(
    levels: list[tuple[float, float]],
    mouth: list[tuple[float, float]],
    *,
    start: float,
    end: float,
    max_lag_ms: int = 300,
) -> float | None:
    """How far the mouth trails the voice (negative: leads), by cross-correlating the voice's
    loudness with the mouth's opening over [start, end] on a 10 ms grid."""
    grid = np.arange(start, end, 0.01)
    if len(grid) < 50:
        return None
    if len(levels) < 10 or len(mouth) < 10:
        return None
    heard = np.asarray(levels, dtype=np.float64)
    seen = np.asarray(mouth, dtype=np.float64)
    voice = np.interp(grid, heard[:, 0], heard[:, 1])
    face = np.interp(grid, seen[:, 0], seen[:, 1])
    voice = (voice - voice.mean()) / (voice.std() or 1.0)
    face = (face - face.mean()) / (face.std() or 1.0)
    steps = max_lag_ms // 10
    scores = []
    for lag in range(-steps, steps + 1):
        a = voice[max(0, -lag) : len(voice) - max(0, lag)]
        b = face[max(0, lag) : len(face) - max(0, -lag)]
        scores.append(float(np.mean(a * b)))
    best = int(np.argmax(scores))
    if scores[best] < MIN_AV_CORRELATION:
        return None  # too little speech in the window to say
    return float((best - steps) * 10)


def presented_onsets(
    received: Received, *, start: float, end: float, mouth_moving: float
) -> list[float]:
    """Mouth-opening onset minus voice onset (ms) for each onset of the twin's voice after a
    pause, in presentation time (`SenderClock`), between the arrivals `start` and `end`.

    A voice onset is the first 2.5 ms block above `SPEECH_RMS` after `QUIET_BEFORE_ONSET_S`
    of quiet; the mouth's is the pts of the first video frame whose mouth opening is above
    `mouth_moving`, among frames from 0.2 s before to 0.3 s after the voice onset, if the
    mouth was shut before it. A frame shows from its pts until the next, so with 25 fps an
    exact face reads -20..+20 ms.
    """
    audio_clock, video_clock = received.audio_clock, received.video_clock
    if not audio_clock.offsets or not video_clock.offsets:
        return []
    video: list[tuple[float, float]] = []
    for (arrival, opening), pts in zip(received.mouth, received.video_pts, strict=True):
        at = video_clock.sender_time(pts)
        if at is not None and start - 1.0 <= arrival <= end + 1.0:
            video.append((at, opening))
    skews: list[float] = []
    quiet_since: float | None = None
    for arrival, pts, onset in received.audio_pts:
        if not start <= arrival <= end:
            continue
        at = audio_clock.sender_time(pts)
        if at is None:
            continue
        if onset < 0:
            quiet_since = at if quiet_since is None else quiet_since
            continue
        voice = at + onset / RATE
        was_quiet = quiet_since is not None and voice - quiet_since >= QUIET_BEFORE_ONSET_S
        quiet_since = None
        if not was_quiet:
            continue
        window = [(t, m) for t, m in video if voice - 0.2 <= t <= voice + 0.3]
        before = [m for t, m in video if voice - 0.3 <= t < voice - 0.2]
        opened = next((t for t, m in window if m > mouth_moving), None)
        if opened is None or not before or max(before) > mouth_moving:
            continue
        if any(m > mouth_moving for t, m in window if t < opened):
            continue
        skews.append(round((opened - voice) * 1000, 1))
    return skews


def shown_mouth(received: Received) -> tuple[np.ndarray, np.ndarray]:
    """(presentation time, mouth opening) per received frame. A frame is on screen from its
    pts until the next frame's and stands for the middle of that time."""
    clock = received.video_clock
    pts = np.asarray(received.video_pts[: len(received.mouth)], dtype=np.int64)
    steps = np.diff(pts)
    steps = steps[steps > 0]
    half = float(np.median(steps)) / clock.rate / 2 if len(steps) else 0.0
    shown, opening = [], []
    for (_, value), p in zip(received.mouth, pts, strict=True):
        at = clock.sender_time(int(p))
        if at is not None:
            shown.append(at + half)
            opening.append(value)
    return np.asarray(shown), np.asarray(opening)


def presented_offset_ms(received: Received, *, start: float, end: float) -> float | None:
    """`av_offset_ms` in presentation time (`SenderClock`) for the audio that arrived between
    `start` and `end`: each audio frame's loudness at the middle of the 20 ms it plays, each
    video frame's mouth at the middle of its time on screen."""
    audio_clock = received.audio_clock
    levels: list[tuple[float, float]] = []
    for (arrival, pts, _), (_, rms) in zip(received.audio_pts, received.levels, strict=True):
        at = audio_clock.sender_time(pts)
        if at is not None and start <= arrival <= end:
            levels.append((at + FRAME / RATE / 2, rms))
    if not levels:
        return None
    shown, opening = shown_mouth(received)
    inside = (shown >= levels[0][0] - 0.5) & (shown <= levels[-1][0] + 0.5)
    mouth = list(zip(shown[inside].tolist(), opening[inside].tolist(), strict=True))
    if not mouth:
        return None
    return av_offset_ms(levels, mouth, start=levels[0][0], end=levels[-1][0])


class TwinCall:
    """One guest connection: `async with TwinCall(base_url=..., token=...) as call:`."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        record: Path | None = None,
        mouth_box: tuple[int, int, int, int] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._record = record
        self._mouth_box = mouth_box
        self.mic = Microphone()
        self.received = Received()
        self.session_id = ""
        self.peer_id = ""
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._events: RTCDataChannel | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._recorder: MediaRecorder | None = None
        self._http: aiohttp.ClientSession | None = None
        self._resting: list[float] = []
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    async def __aenter__(self) -> TwinCall:
        pc = self._pc
        pc.addTransceiver(self.mic, direction="sendrecv")
        pc.addTransceiver("video", direction="recvonly")
        set_audio_prefetch(pc, PLAYOUT_PREFETCH)
        for transceiver in pc.getTransceivers():
            audio = transceiver.kind == "audio"
            clock = self.received.audio_clock if audio else self.received.video_clock
            watch_sender_reports(transceiver.receiver, clock)
        self._events = pc.createDataChannel("events")
        animation = pc.createDataChannel("animation", ordered=False, maxRetransmits=0)
        self._events.on("message", self._on_message)
        animation.on("message", self._on_animation)
        if self._record is not None:
            self._recorder = MediaRecorder(str(self._record))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            consume = self._audio if track.kind == "audio" else self._video
            if self._recorder is not None:
                from aiortc.contrib.media import MediaRelay

                relay = MediaRelay()
                self._recorder.addTrack(relay.subscribe(track))
                track = relay.subscribe(track)
            self._tasks.append(asyncio.create_task(consume(track)))

        await pc.setLocalDescription(await pc.createOffer())
        self._http = aiohttp.ClientSession()
        async with self._http.post(
            f"{self.base_url}/api/sessions",
            json={"token": self._token, "sdp": pc.localDescription.sdp},
        ) as response:
            body = await response.json()
            if response.status != 201:
                raise RuntimeError(f"gateway refused the call: {response.status} {body}")
        self.session_id, self.peer_id = body["session_id"], body["peer_id"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="answer"))
        if self._recorder is not None:
            await self._recorder.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            with contextlib.suppress(aiohttp.ClientError):
                async with self._http.delete(
                    f"{self.base_url}/api/sessions/{self.session_id}/peers/{self.peer_id}"
                ):
                    pass
            await self._http.close()
            self._http = None
        if self._recorder is not None:
            await self._recorder.stop()
            self._recorder = None
        await self._pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    async def connected(self, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while not (self.received.frames and self._events and self._events.readyState == "open"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no media within {timeout_s} s ({self.connection_state})")
            await asyncio.sleep(0.02)

    def ask_text(self, text: str) -> None:
        assert self._events is not None
        self._events.send(json.dumps({"type": "text", "text": text}))

    def send_raw(self, message: str) -> None:
        assert self._events is not None
        self._events.send(message)

    async def wait_message(
        self, match: Callable[[dict[str, Any]], bool], *, after: float = 0.0, timeout_s: float = 30
    ) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, message in self.received.messages:
                if t >= after and match(message):
                    return t, message
            await asyncio.sleep(0.02)
        raise TimeoutError("no such message from the gateway")

    def _on_message(self, message: str | bytes) -> None:
        data = json.loads(message)
        self.received.messages.append((time.monotonic(), data))
        for listener in self.listeners:
            listener(data)

    def _on_animation(self, message: str | bytes) -> None:
        self.received.animation.append((time.monotonic(), json.loads(message)))

    async def _audio(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                assert isinstance(frame, av.AudioFrame)
                mono = _mono(frame)
                rms = float(np.sqrt(np.mean(mono * mono))) if mono.size else 0.0
                self.received.levels.append((now, rms))
                if rms > SPEECH_RMS:
                    self.received.sound.append(now)
                self.received.audio_pts.append((now, int(frame.pts or 0), _onset(mono)))
                self.received.loudness.append(loudness_ms(mono, frame.sample_rate))

    async def _video(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                self.received.frames.append(now)
                if self._mouth_box is not None and isinstance(frame, av.VideoFrame):
                    self.received.mouth.append((now, self._mouth_motion(frame)))
                    self.received.video_pts.append(int(frame.pts or 0))

    def _mouth_motion(self, frame: av.VideoFrame) -> float:
        """Percent of the mouth box that is mouth interior (dark), above the face at rest.

        Counting dark pixels, not differences, keeps the head's small motions out of it.
        """
        assert self._mouth_box is not None
        x0, y0, x1, y1 = self._mouth_box
        luma = frame.to_ndarray(format="gray")[y0:y1, x0:x1]
        dark = 100.0 * float(np.mean(luma < MOUTH_DARK_LUMA))
        if len(self._resting) < 10:
            self._resting.append(dark)
            return 0.0
        return dark - min(self._resting)


def loudness_ms(samples: np.ndarray, rate: int) -> np.ndarray:
    """RMS per millisecond; block edges are rounded per block, so they never drift."""
    edges = (np.arange(int(len(samples) * 1000 // rate) + 1) * rate) // 1000
    if len(edges) < 2:
        return np.zeros(0)
    power = np.add.reduceat(samples[: edges[-1]].astype(np.float64) ** 2, edges[:-1])
    return np.asarray(np.sqrt(power / np.diff(edges)))


def _mono(frame: av.AudioFrame) -> np.ndarray:
    pcm = frame.to_ndarray().astype(np.float32)
    channels = len(frame.layout.channels)
    mono = pcm.reshape(-1, channels).mean(axis=1) if pcm.ndim == 2 and channels > 1 else pcm
    return np.asarray(mono.reshape(-1))


def _onset(mono: np.ndarray) -> int:
    """Where in a received frame the first 2.5 ms block louder than `SPEECH_RMS` starts
    (samples at 48 kHz), or -1."""
    blocks = len(mono) // ONSET_BLOCK
    if blocks == 0:
        return -1
    power = np.mean(mono[: blocks * ONSET_BLOCK].reshape(blocks, ONSET_BLOCK) ** 2, axis=1)
    loud = np.flatnonzero(power > SPEECH_RMS * SPEECH_RMS)
    return int(loud[0]) * ONSET_BLOCK if loud.size else -1
