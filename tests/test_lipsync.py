"""The benchmark's lip-sync measure: a reply found in the received voice, its phonemes timed by
tts's alignment, the received mouth compared with them in presentation time."""

from __future__ import annotations

import random

import numpy as np
import pytest

from twincast_gateway.avatar.animator import VISEME_SHAPES
from twincast_shared.contract import PcmChunk, Viseme, VisemeTrack
from twincast_testkit.lipsync import SpokenChunk, lip_sync, track_lag_ms
from twincast_testkit.rtc_client import Received, loudness_ms

RATE = 48_000
FRAME = 960
FPS = 25


def reply(seed: int, seconds: float = 3.0) -> tuple[PcmChunk, VisemeTrack]:
    """A chunk whose loudness follows its mouth shapes, as speech roughly does."""
    rng = random.Random(seed)
    names = [n for n in VISEME_SHAPES if n != "sil"]
    marks, at = [], 0
    while at < seconds * RATE:
        length = rng.randint(RATE * 50 // 1000, RATE * 220 // 1000)
        marks.append(Viseme(viseme=rng.choice(names), start=at, end=at + length))
        at += length
    samples = np.zeros(at)
    noise = np.random.default_rng(seed).normal(size=at)
    for v in marks:
        samples[v.start : v.end] = noise[v.start : v.end] * (0.05 + VISEME_SHAPES[v.viseme].open)
    pcm = (samples / np.abs(samples).max() * 20_000).astype("<i2")
    chunk = PcmChunk(pcm=pcm.tobytes(), sample_rate=RATE, seq=0, stream="r1", last=True)
    track = VisemeTrack(
        session_id="s1", reply_id="r1", seq=0, sample_rate=RATE, visemes=tuple(marks)
    )
    return chunk, track


def received(
    chunk: PcmChunk,
    track: VisemeTrack,
    *,
    plays_at: float,
    mouth_lag_s: float,
    video_report_late_s: float = 0.0,
) -> Received:
    """What a guest receives: 1 s of silence, the chunk from `plays_at` (sender seconds, pts 0
    at 0 s), then silence; video whose mouth shows each phoneme `mouth_lag_s` after it sounds,
    drawn smoothly and not in proportion to the opening (as pixels count it)."""
    got = Received()
    got.audio_clock.first_rtp = got.video_clock.first_rtp = 0
    got.audio_clock.offsets.append(0.0)
    got.video_clock.offsets.append(video_report_late_s)
    voice = np.frombuffer(chunk.pcm, dtype="<i2").astype(np.float32)
    total = int((plays_at + 2.0) * RATE + len(voice))
    line = np.zeros(total, dtype=np.float32)
    first = int(plays_at * RATE)
    line[first : first + len(voice)] = voice
    jitter = np.random.default_rng(1)
    for k in range(total // FRAME):
        frame = line[k * FRAME : (k + 1) * FRAME]
        arrival = 100.0 + k * 0.02 + float(jitter.uniform(0, 0.03))
        got.audio_pts.append((arrival, k * FRAME, -1))
        got.loudness.append(loudness_ms(frame, RATE))
    begins = np.array([plays_at + v.start / RATE for v in track.visemes])
    ends = np.array([plays_at + v.end / RATE for v in track.visemes])
    opens = np.array([VISEME_SHAPES[v.viseme].open for v in track.visemes])
    for k in range(int(total / RATE * FPS)):
        middle = (k + 0.5) / FPS - mouth_lag_s
        near = np.linspace(middle - 0.04, middle + 0.04, 17)
        i = np.clip(np.searchsorted(begins, near, side="right") - 1, 0, len(begins) - 1)
        shape = np.where((near >= begins[i]) & (near < ends[i]), opens[i], 0.0)
        pixels = 40 * max(0.0, float(np.mean(shape)) - 0.12) ** 1.5
        got.mouth.append((100.0 + k / FPS + 0.01, pixels))
        got.video_pts.append(k * 90_000 // FPS)
    return got


@pytest.mark.parametrize("lag_ms", [-30, 0, 12, 45])
def test_the_mouths_lag_behind_the_voice_is_found_to_the_millisecond(lag_ms: int) -> None:
    chunk, track = reply(seed=lag_ms + 100)
    got = received(chunk, track, plays_at=1.0, mouth_lag_s=lag_ms / 1000)
    synced = lip_sync(got, [SpokenChunk.of(chunk, track)], heard_from=100.0 + 1.0)
    assert synced is not None
    assert abs(synced.lag_ms - lag_ms) <= 2
    assert synced.correlation > 0.8


def test_presentation_time_comes_from_the_sender_reports() -> None:
    chunk, track = reply(seed=7)
    # The frames are drawn in sync, but the video's Sender Reports put them 40 ms later: a
    # receiver that syncs by them shows the mouth 40 ms late.
    got = received(chunk, track, plays_at=1.0, mouth_lag_s=0.0, video_report_late_s=0.04)
    synced = lip_sync(got, [SpokenChunk.of(chunk, track)], heard_from=101.0)
    assert synced is not None
    assert abs(synced.lag_ms - 40) <= 2


def test_a_reply_that_was_not_heard_is_not_measured() -> None:
    chunk, track = reply(seed=3)
    other, other_track = reply(seed=4)
    got = received(other, other_track, plays_at=1.0, mouth_lag_s=0.0)
    assert lip_sync(got, [SpokenChunk.of(chunk, track)], heard_from=101.0) is None


@pytest.mark.parametrize("lag_ms", [-250, 230, 400])
def test_a_mouth_out_of_sync_beyond_the_search_has_no_lag_not_the_edges(lag_ms: int) -> None:
    chunk, track = reply(seed=9)
    got = received(chunk, track, plays_at=1.0, mouth_lag_s=lag_ms / 1000)
    synced = lip_sync(got, [SpokenChunk.of(chunk, track)], heard_from=101.0)
    assert synced is not None
    assert synced.lag_ms is None


@pytest.mark.parametrize("shift_ms", [0, 40, -25])
def test_a_track_that_trails_its_own_voice_is_found(shift_ms: int) -> None:
    chunk, track = reply(seed=11)
    shift = shift_ms * RATE // 1000
    moved = tuple(
        Viseme(viseme=v.viseme, start=max(0, v.start + shift), end=max(0, v.end + shift))
        for v in track.visemes
        if v.end + shift > 0
    )
    lag = track_lag_ms([SpokenChunk.of(chunk, track.model_copy(update={"visemes": moved}))])
    assert lag is not None
    assert abs(lag - shift_ms) <= 2


def test_a_reply_cut_short_is_measured_over_what_was_heard() -> None:
    heard, heard_track = reply(seed=5)
    cut, cut_track = reply(seed=6)  # the next chunk, flushed by a barge-in before it played
    got = received(heard, heard_track, plays_at=1.0, mouth_lag_s=0.02)
    synced = lip_sync(
        got,
        [SpokenChunk.of(heard, heard_track), SpokenChunk.of(cut, cut_track)],
        heard_from=101.0,
    )
    assert synced is not None
    assert synced.chunks == 1
    assert abs(synced.lag_ms - 20) <= 2
