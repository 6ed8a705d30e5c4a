"""A/V skew as a lip-syncing receiver presents the media: RTP timestamps on the sender's clock."""

from __future__ import annotations

import numpy as np

from twincast_testkit.rtc_client import NTP_UNIX_OFFSET, Received, SenderClock, presented_onsets


def ntp(unix_s: float) -> int:
    seconds = unix_s + NTP_UNIX_OFFSET
    return (int(seconds) << 32) | int((seconds % 1) * (1 << 32))


def test_sender_reports_map_rtp_time_to_the_senders_clock() -> None:
    clock = SenderClock(48_000)
    assert clock.sender_time(0) is None
    clock.first_rtp = (1 << 32) - 960  # the stream's timestamps wrap right after it starts
    # Reports sent 1 ms and 3 ms after the media instant they carry; pts 0 is at t = 1000 s.
    clock.report(rtp_timestamp=(clock.first_rtp + 48_000) % (1 << 32), ntp_timestamp=ntp(1001.001))
    clock.report(rtp_timestamp=(clock.first_rtp + 96_000) % (1 << 32), ntp_timestamp=ntp(1002.003))
    clock.report(rtp_timestamp=(clock.first_rtp + 144_000) % (1 << 32), ntp_timestamp=ntp(1003.002))
    at = clock.sender_time(24_000)
    assert at is not None
    assert abs(at - 1000.502) < 1e-4


def _received(
    *, voice_at: float, mouth_at: float, audio_origin: float, video_origin: float
) -> Received:
    """A reply that sounds at `voice_at` and opens the mouth at `mouth_at` (sender seconds)."""
    received = Received()
    received.audio_clock.first_rtp, received.video_clock.first_rtp = 0, 0
    received.audio_clock.offsets.append(audio_origin)
    received.video_clock.offsets.append(video_origin)
    for k in range(150):  # 3 s of 20 ms audio frames; arrival is 100 ms late
        t = audio_origin + k * 0.02
        inside = int((voice_at - t) * 48_000)
        onset = -1 if t + 0.02 <= voice_at else max(0, inside)
        received.audio_pts.append((t + 0.1, k * 960, onset))
    for k in range(75):  # 25 fps video
        t = video_origin + k * 0.04
        received.mouth.append((t + 0.01, 3.0 if t >= mouth_at else 0.0))
        received.video_pts.append(k * 3600)
    return received


def test_onsets_are_paired_in_presentation_time_not_arrival_time() -> None:
    received = _received(voice_at=1.2105, mouth_at=1.2, audio_origin=0.0, video_origin=0.0)
    skews = presented_onsets(received, start=0.0, end=10.0, mouth_moving=0.4)
    assert skews == [-10.5]
    # The video's Sender Reports put its frames 40 ms later: a receiver shows them 40 ms late
    # (the frame that opens the mouth, pts 1.24 s, plays at 1.28 s).
    received = _received(voice_at=1.2105, mouth_at=1.24, audio_origin=0.0, video_origin=0.0)
    received.video_clock.offsets[0] = 0.04
    skews = presented_onsets(received, start=0.0, end=10.0, mouth_moving=0.4)
    assert len(skews) == 1
    assert np.isclose(skews[0], 69.5)
