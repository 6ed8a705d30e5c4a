"""Barge-in at the gateway: the uplink voice detector pauses the twin, stt confirms or not."""

from __future__ import annotations

import asyncio
import wave

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from tests.conftest import SPEECH
from twincast_gateway.avatar import Animator
from twincast_gateway.session.media import (
    FRAME_SAMPLES,
    RESUME_FADE,
    SAMPLE_RATE,
    GuestAudioPump,
    InOrderAudioBuffer,
    MediaClock,
    SpeechOut,
)
from twincast_gateway.session.uplink import BargeInGuard, VoiceGate
from twincast_shared.contract import PcmChunk

GUEST_FRAME = 320  # 20 ms at 16 kHz


def speech_16k(name: str = "arctic_a0009.wav") -> np.ndarray:
    with wave.open(str(SPEECH / name), "rb") as wav:
        rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    samples = np.frombuffer(pcm, dtype="<i2")
    if rate != 16_000:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
        out = [*resampler.resample(frame), *resampler.resample(None)]
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in out])
    return samples.astype(np.int16)


def frames(x: np.ndarray) -> list[bytes]:
    return [
        x[i : i + GUEST_FRAME].tobytes() for i in range(0, len(x) - GUEST_FRAME + 1, GUEST_FRAME)
    ]


def onset_frame(x: np.ndarray) -> int:
    """The first 20 ms frame of `x` that a listener would call speech (well above silence)."""
    rms = [float(np.sqrt(np.mean(np.frombuffer(f, "<i2").astype(float) ** 2))) for f in frames(x)]
    return next(i for i, level in enumerate(rms) if level > 500)


def cough(seconds: float = 0.3, *, seed: int = 0) -> np.ndarray:
    """A loud burst of noise that fades: coughs, clicks of a pen, a door."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16_000)
    burst = rng.normal(0, 9000, n) * np.exp(-np.arange(n) / (0.1 * 16_000))
    burst = np.convolve(burst, np.ones(3) / 3, mode="same")
    return np.clip(burst, -32000, 32000).astype(np.int16)


def test_the_gate_hears_speech_within_a_few_frames_of_its_onset() -> None:
    for name in ("arctic_a0009.wav", "arctic_a0007.wav"):
        x = np.concatenate([np.zeros(16_000, np.int16), speech_16k(name)])
        gate = VoiceGate()
        voiced = [i for i, f in enumerate(frames(x)) if gate.feed(f)]
        onset = onset_frame(x)
        assert voiced, name
        assert onset - 1 <= voiced[0] <= onset + 3, (name, onset, voiced[:5])


@pytest.mark.parametrize("seed", range(5))
def test_the_gate_ignores_coughs_and_clicks(seed: int) -> None:
    click = np.zeros(8000, np.int16)
    click[4000:4006], click[4006:4012] = 28000, -28000
    x = np.concatenate(
        [np.zeros(4000, np.int16), cough(seed=seed), click, cough(0.15, seed=seed + 9)]
    )
    gate = VoiceGate()
    assert not any(gate.feed(f) for f in frames(x))


def test_the_gate_learns_a_steady_hum_as_noise() -> None:
    t = np.arange(5 * 16_000) / 16_000
    hum = (600 * np.sin(2 * np.pi * 100 * t)).astype(np.int16)  # mains hum, -38 dBFS
    gate = VoiceGate()
    heard = [gate.feed(f) for f in frames(hum)]
    assert not any(heard[-100:]), "after a few seconds the hum is part of the floor"


def test_the_twins_own_voice_leaking_back_quietly_is_not_a_barge_in() -> None:
    twin = speech_16k().astype(np.float32)
    gate = VoiceGate()
    level = float(np.sqrt(np.mean(twin**2)))
    echo = (twin * 10 ** (-26 / 20)).astype(np.int16)  # what a browser's echo canceller leaves
    assert not any(gate.feed(f, echo_rms=2 * level) for f in frames(echo))
    # The same voice as loud as the twin is someone talking.
    gate = VoiceGate()
    assert any(gate.feed(f, echo_rms=2 * level) for f in frames(twin.astype(np.int16)))


class StillClock(MediaClock):
    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0

    def now(self) -> float:
        return self.t


class Ticks:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def twin_voice(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (6000 * np.sin(2 * np.pi * 180 * t) + 1).astype(np.int16)


def play(
    speech: SpeechOut, guard: BargeInGuard, ticks: Ticks, guest: list[bytes]
) -> list[np.ndarray | None]:
    """One twin frame out and one guest frame in every 20 ms."""
    out = []
    for part in guest:
        out.append(speech.pull(FRAME_SAMPLES))
        guard.hear(part)
        ticks.t += 0.02
    return out


def setup() -> tuple[SpeechOut, Animator, BargeInGuard, Ticks, list[dict[str, object]]]:
    speech = SpeechOut(clock=StillClock())
    face = Animator(seed=1)
    ticks = Ticks()
    told: list[dict[str, object]] = []
    guard = BargeInGuard(speech=speech, face=face, notify=told.append, hold_s=0.5, clock=ticks)
    return speech, face, guard, ticks, told


def test_guest_speech_pauses_the_twin_at_the_next_frame_and_stt_flushes_it() -> None:
    speech, face, guard, ticks, told = setup()
    voice = twin_voice()
    speech.schedule(voice, tag="r1")
    face.speak([("aa", 0.0, 2.0)], 0.0)
    guest = np.concatenate([np.zeros(8000, np.int16), speech_16k()])
    out = play(speech, guard, ticks, frames(guest)[:60])
    ducked = next(i for i, m in enumerate(told) if m["type"] == "ducked")
    assert ducked == 0
    assert len(guard.ducked_at) == 1
    first_silent = next(i for i, f in enumerate(out) if i > 0 and f is None)
    onset = onset_frame(guest)
    assert first_silent <= onset + 4, (onset, first_silent)
    assert all(f is None for f in out[first_silent:]), "the twin spoke while the guest did"
    paused_at = speech.paused_at
    assert paused_at is not None
    assert face.state(paused_at / SAMPLE_RATE + 0.1).mouth_open == 0.0
    # stt confirms: the queued speech goes, and nothing resumes it.
    assert speech.flush() == len(voice) - paused_at
    face.flush(ticks.t)
    ticks.t += 2.0
    guard.hear(bytes(2 * GUEST_FRAME))
    assert not speech.speaking
    assert guard.resumed_at == []


def test_without_stt_the_twin_goes_on_where_it_stopped_nothing_lost() -> None:
    speech, face, guard, ticks, told = setup()
    voice = twin_voice()
    speech.schedule(voice, tag="r1")
    face.speak([("aa", 0.0, 0.5), ("oh", 0.5, 2.0)], 0.0)
    # A word from the guest (a "hm"), then quiet; stt says nothing.
    word = speech_16k()[: 16_000 * 3 // 10]
    guest = np.concatenate([np.zeros(8000, np.int16), word, np.zeros(40_000, np.int16)])
    out = play(speech, guard, ticks, frames(guest))
    assert [m["type"] for m in told] == ["ducked", "resumed"]
    paused = next(i for i, f in enumerate(out) if i > 0 and f is None)
    resumed = next(i for i, f in enumerate(out) if i > paused and f is not None)
    paused_at, shift = paused * FRAME_SAMPLES, (resumed - paused) * FRAME_SAMPLES
    assert shift >= 0.5 * SAMPLE_RATE
    while speech.speaking:
        out.append(speech.pull(FRAME_SAMPLES))
    played = np.concatenate([f for f in out if f is not None])
    assert len(played) == len(voice), "every sample of the reply is played"
    seam = paused_at + RESUME_FADE
    assert np.array_equal(played[:paused_at], voice[:paused_at])
    assert np.array_equal(played[seam:], voice[seam:])
    assert np.all(np.abs(played[paused_at:seam]) <= np.abs(voice[paused_at:seam]))
    # The mouth waited too: closed during the pause, and the "oh" came as much later.
    pause_s, shift_s = paused_at / SAMPLE_RATE, shift / SAMPLE_RATE
    assert face.state(pause_s + 0.2).mouth_open == 0.0
    assert face.state(0.75 + shift_s).viseme == "oh"


def test_a_cough_does_not_stop_the_twin() -> None:
    speech, _face, guard, ticks, told = setup()
    speech.schedule(twin_voice(), tag="r1")
    guest = np.concatenate([np.zeros(4000, np.int16), cough(), np.zeros(8000, np.int16)])
    out = play(speech, guard, ticks, frames(guest))
    assert told == []
    assert all(f is not None for f in out)


def test_guest_speech_while_the_twin_is_silent_pauses_nothing() -> None:
    speech, _face, guard, ticks, told = setup()
    play(speech, guard, ticks, frames(speech_16k())[:40])
    assert told == []
    assert not speech.paused


def test_the_uplink_buffer_hands_each_packet_over_at_once_in_order() -> None:
    buffer = InOrderAudioBuffer(capacity=16, skip_after=3)

    def packet(seq: int) -> RtpPacket:
        p = RtpPacket(sequence_number=seq, timestamp=960 * seq)
        p._data = bytes([seq % 256])  # type: ignore[attr-defined]
        return p

    def add(seq: int) -> int | None:
        _, frame = buffer.add(packet(seq))
        return None if frame is None else frame.timestamp // 960

    assert [add(s) for s in (100, 101, 102)] == [100, 101, 102]
    assert add(104) is None  # 103 may still come
    assert add(103) == 103
    assert add(105) == 104
    assert add(102) is None  # too late
    # 107 is lost: three later packets make it count as such.
    assert [add(s) for s in (106, 108, 109, 110)] == [105, 106, None, 108]


class FakeMic(MediaStreamTrack):
    kind = "audio"

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.sent = 0
        self.delivered = asyncio.Event()
        self.more = asyncio.Event()

    async def recv(self) -> av.AudioFrame:
        if self.sent >= self.count:
            raise MediaStreamError
        if self.sent:
            await self.more.wait()
            self.more.clear()
        frame = av.AudioFrame.from_ndarray(
            np.full((1, 960), 1000, dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 48_000
        frame.pts = self.sent * 960
        self.sent += 1
        return frame


async def test_the_pump_publishes_each_frame_without_waiting_for_the_next() -> None:
    mic = FakeMic(3)
    published: list[PcmChunk] = []
    heard: list[bytes] = []

    async def publish(chunk: PcmChunk) -> None:
        published.append(chunk)

    pump = GuestAudioPump(track=mic, stream="p", publish=publish, hear=heard.append)
    task = asyncio.create_task(pump.run())
    for n in (1, 2):
        for _ in range(50):
            if len(published) >= n:
                break
            await asyncio.sleep(0.01)
        assert len(published) == n, "a 20 ms frame in must be a 20 ms chunk out at once"
        mic.more.set()
    await asyncio.wait_for(task, 5)
    assert [len(c.pcm) for c in published if not c.last] == [640, 640, 640]
    assert heard == [c.pcm for c in published if not c.last]


def test_holding_while_a_new_reply_arrives_keeps_it_for_after() -> None:
    speech, face, guard, ticks, _told = setup()
    speech.schedule(twin_voice(1.0), tag="r1")
    guest = np.concatenate([np.zeros(8000, np.int16), speech_16k()[:4800]])
    play(speech, guard, ticks, frames(guest))
    assert speech.paused
    start = speech.schedule(twin_voice(0.3), tag="r2")
    assert start == speech.queued_until - int(0.3 * SAMPLE_RATE)
    face.speak([("aa", 0.0, 0.3)], start / SAMPLE_RATE)
    assert face.state(start / SAMPLE_RATE + 0.1).mouth_open == 0.0  # held, not shown


def test_the_owners_live_voice_is_never_paused() -> None:
    speech, _face, guard, ticks, told = setup()
    owner = twin_voice(1.5)
    speech.schedule(owner, tag="owner")
    guest = np.concatenate([np.zeros(8000, np.int16), speech_16k()[:8000]])
    out = play(speech, guard, ticks, frames(guest))
    assert told == []
    assert all(f is not None for f in out)
