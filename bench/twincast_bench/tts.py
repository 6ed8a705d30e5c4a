"""`twincast bench tts`: reply text in, first audio chunk out, through the tts service on a bus.

A private stack (nats-server, Valkey and the tts service alone, as a separate process) is
started in a temporary directory on free ports. This process is the client, with plain nats-py:
for each reply it publishes the sentences as `ReplyChunk` events back to back, one sentence per
chunk as the reasoning service does, in a fresh session, and listens on the session's audio and
viseme subjects.

First audio is measured here, from publishing the first chunk to receiving the first audio
chunk, so it includes two loopback bus hops (client -> tts, tts -> client). The service logs
where its own share of that went (queue wait, phonemize, Piper's encoder, flow and decoder,
publish) for each reply's first chunk; `breakdown_ms_p50` gives their medians, read back from
its log. Audio comes in chunks: `stall_ms` is how long a client that starts playing at the first
chunk would wait for later ones (0 when every chunk arrives before the audio ahead of it ends).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from uuid import uuid4

import nats
import nats.aio.client
import nats.aio.msg
import numpy as np

from twincast.runtime import Stack
from twincast_shared.contract import PcmChunk, ReplyChunk, VisemeTrack
from twincast_shared.contract import subjects as s
from twincast_testkit.stats import percentile

REPLY_TIMEOUT_S: Final = 30.0
SILENCE_DBFS: Final = -40.0
JSON: Final = {"content-type": "application/json"}
PATH: Final = (
    "ReplyChunk (nats-py client) -> nats-server (loopback) -> tts process: FastStream "
    "subscriber, pydantic, split into pieces, Piper (onnxruntime CPU) per piece in chunks -> "
    "VisemeTrack + PcmChunk per chunk -> nats-server -> client; first audio includes both bus "
    "hops"
)
_LOG_LINE: Final = re.compile(r"first audio reply=(?P<reply>\S+) (?P<stages>.*)$")

# Typical conversational replies, one tuple entry per ReplyChunk (one sentence each).
REPLIES: Final[tuple[tuple[str, ...], ...]] = (
    ("Hi! Nice to meet you.",),
    (
        "Hi, I'm Juniper Hale's AI twin.",
        "I answer from Juniper's own writing and talks, and I'll pass anything else on to her.",
    ),
    ("Good morning.", "What would you like to know about bees?"),
    ("Yes, it is.",),
    ("Sure, happy to help.",),
    ("Thanks for asking.",),
    ("Okay.", "Let me think about that for a second."),
    ("I don't have anything from Juniper on that.", "I'll pass your question to her."),
    (
        "That's a good question, but it's not something Juniper has written about.",
        "I'll let her know you asked.",
    ),
    ("Not really, no.",),
    (
        "People often ask if Juniper is my real name.",
        "It is.",
        "My mother was a botanist, and she says I got off lightly, "
        "because my brother is called Yarrow.",
    ),
    (
        "I'm Juniper Hale, and I'm an urban ecologist.",
        "I study the wild animals and plants that make a living in cities, "
        "and mostly I study bees.",
    ),
    ("In summer, I am usually on a roof with a clipboard, a bucket and a very good hat.",),
    ("I answer student emails on Fridays.", "If I am slow, it is because I am on a roof."),
    (
        "Learn to identify ten bees well before you try to learn a hundred badly.",
        "Keep a field notebook, and write in it every day you are outside.",
    ),
    (
        "Start with at least three pots.",
        "One pot is a snack, and three pots are a menu.",
    ),
    (
        "For high summer, grow lavender and oregano.",
        "Oregano is the best bee plant I know, and it asks for almost nothing.",
    ),
    (
        "The black tar roof reached 71 degrees Celsius at the surface.",
        "The planted green roof next door stayed at 34 degrees Celsius.",
    ),
    (
        "I have nothing against honeybees.",
        "I like honey on toast as much as anyone.",
        "But I think it helps to be clear about what a honeybee is.",
    ),
    (
        "Good question.",
        "We caught and identified 5,214 bees, from 63 species of wild bees.",
    ),
)
WARM_UP: Final = ("Hello there.",)


@dataclass
class Heard:
    """What the client received for one reply."""

    published_ns: int
    first_audio_ns: int | None = None
    done_ns: int | None = None
    first_pcm: bytes = b""
    sample_rate: int = 0
    samples: int = 0
    chunks: dict[int, int] = field(default_factory=dict)
    arrivals: list[tuple[int, int]] = field(default_factory=list)  # (ns, samples)
    tracks: dict[int, VisemeTrack] = field(default_factory=dict)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def on_audio(self, msg: nats.aio.msg.Msg) -> None:
        chunk = PcmChunk.from_wire(msg.data, msg.headers or {})
        if self.first_audio_ns is None and chunk.pcm:
            self.first_audio_ns = time.monotonic_ns()
            self.first_pcm = chunk.pcm
        self.sample_rate = chunk.sample_rate
        self.samples += chunk.samples
        self.chunks[chunk.seq] = chunk.samples
        if chunk.pcm:
            self.arrivals.append((time.monotonic_ns(), chunk.samples))
        if chunk.last:
            self.done_ns = time.monotonic_ns()
            self.finished.set()

    def on_track(self, msg: nats.aio.msg.Msg) -> None:
        track = VisemeTrack.model_validate_json(msg.data)
        self.tracks[track.seq] = track

    def stall_ms(self) -> float:
        """Silence a client playing from the first chunk on would hear while waiting for the
        next one, in total."""
        stalled = 0.0
        ends_ms = 0.0  # when the audio received so far has been played out
        for at_ns, samples in self.arrivals:
            at_ms = at_ns / 1e6
            if ends_ms and at_ms > ends_ms:
                stalled += at_ms - ends_ms
            ends_ms = max(ends_ms, at_ms) + 1000 * samples / self.sample_rate
        return stalled

    def covered(self) -> int:
        """Audio samples under a viseme of the track with the same (reply, seq)."""
        total = 0
        for seq, samples in self.chunks.items():
            track = self.tracks.get(seq)
            if track is None:
                continue
            marks = np.zeros(samples, dtype=bool)
            for v in track.visemes:
                marks[min(v.start, samples) : min(v.end, samples)] = True
            total += int(marks.sum())
        return total


def run_tts_bench(*, runs: int = 5) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="twincast-bench-tts-") as tmp:
        state = Path(tmp)
        with Stack(
            state_dir=state,
            services=("tts",),
            nats_port=0,
            redis_port=0,
            health_ports={},
        ) as stack:
            assert stack.urls is not None
            heard = asyncio.run(_measure(stack.urls.nats, runs))
        service_log = (state / "logs" / "tts.log").read_text(errors="replace")
    return _summary(heard, runs=runs, stages=_stages(service_log))


async def _measure(nats_url: str, runs: int) -> dict[str, Heard]:
    nc = await nats.connect(nats_url, connect_timeout=5)
    try:
        await _speak(nc, WARM_UP)
        heard: dict[str, Heard] = {}
        for _ in range(runs):
            for reply in REPLIES:
                reply_id, result = await _speak(nc, reply)
                heard[reply_id] = result
        return heard
    finally:
        await nc.drain()


async def _speak(nc: nats.aio.client.Client, sentences: Sequence[str]) -> tuple[str, Heard]:
    session, reply_id = uuid4().hex, uuid4().hex
    chunks = [
        ReplyChunk(
            session_id=session,
            reply_id=reply_id,
            in_reply_to=uuid4().hex,
            seq=i,
            text=text,
            final=i == len(sentences) - 1,
        ).model_dump_json()
        for i, text in enumerate(sentences)
    ]
    heard = Heard(published_ns=0)

    async def on_audio(msg: nats.aio.msg.Msg) -> None:
        heard.on_audio(msg)

    async def on_track(msg: nats.aio.msg.Msg) -> None:
        heard.on_track(msg)

    audio = await nc.subscribe(s.TTS_AUDIO.of(session), cb=on_audio)
    tracks = await nc.subscribe(s.TTS_VISEMES.of(session), cb=on_track)
    await nc.flush()
    try:
        heard.published_ns = time.monotonic_ns()
        for body in chunks:
            await nc.publish(s.REPLY.of(session), body.encode(), headers=JSON)
        await asyncio.wait_for(heard.finished.wait(), REPLY_TIMEOUT_S)
        await nc.flush()  # every viseme track was sent before its audio
    finally:
        await audio.unsubscribe()
        await tracks.unsubscribe()
    return reply_id, heard


def _leading_silence_ms(pcm: bytes, sample_rate: int) -> float:
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.float64)) / 32768.0
    loud = np.flatnonzero(samples > 10 ** (SILENCE_DBFS / 20))
    first = int(loud[0]) if loud.size else len(samples)
    return 1000.0 * first / sample_rate


def _stages(service_log: str) -> dict[str, dict[str, float]]:
    """The service's own breakdown of each reply's first audio, by reply id."""
    out: dict[str, dict[str, float]] = {}
    for line in service_log.splitlines():
        match = _LOG_LINE.search(line)
        if match is None:
            continue
        pairs = (item.split("=", 1) for item in match["stages"].split())
        out[match["reply"]] = {key: float(value) for key, value in pairs}
    return out


def _p(values: Sequence[float], q: float) -> float:
    return round(percentile(values, q), 2)


def _summary(
    heard: dict[str, Heard], *, runs: int, stages: dict[str, dict[str, float]]
) -> dict[str, object]:
    done = {
        r: (h, h.first_audio_ns, h.done_ns)
        for r, h in heard.items()
        if h.first_audio_ns is not None and h.done_ns is not None
    }
    first_ms = [(first - h.published_ns) / 1e6 for h, first, _ in done.values()]
    audio_s = [h.samples / h.sample_rate for h, _, _ in done.values()]
    wall_s = [(end - h.published_ns) / 1e9 for h, _, end in done.values()]
    samples = sum(h.samples for h, _, _ in done.values())
    covered = sum(h.covered() for h, _, _ in done.values())
    return {
        "first_audio_ms_p50": _p(first_ms, 50),
        "first_audio_ms_p95": _p(first_ms, 95),
        "first_audio_ms_max": _p(first_ms, 100),
        "rtf": round(float(np.median(np.divide(wall_s, audio_s))), 4),
        "viseme_coverage": round(covered / samples, 4) if samples else 0.0,
        "stall_ms_max": _p([h.stall_ms() for h, _, _ in done.values()], 100),
        "replies_stalled": sum(1 for h, _, _ in done.values() if h.stall_ms() > 0),
        "chunks_per_reply_p50": _p([len(h.arrivals) for h, _, _ in done.values()], 50),
        "leading_silence_ms_p50": _p(
            [_leading_silence_ms(h.first_pcm, h.sample_rate) for h, _, _ in done.values()], 50
        ),
        "audio_s_p50": _p(audio_s, 50),
        "wall_s_p50": _p(wall_s, 50),
        "breakdown_ms_p50": _breakdown(
            [(h.published_ns, first, stages[r]) for r, (h, first, _) in done.items() if r in stages]
        ),
        "replies": len(done),
        "runs": runs,
        "cpus": os.cpu_count(),
        "path": PATH,
    }


def _breakdown(rows: list[tuple[int, int, dict[str, float]]]) -> dict[str, float]:
    """Medians of the service's stages, and of the bus hops either side of it."""
    if not rows:
        return {}
    keys = [k for k in rows[0][2] if k.endswith("_ms")]
    out = {k: _p([stage[k] for _, _, stage in rows], 50) for k in keys}
    out["bus_in_ms"] = _p([(st["arrived_ns"] - sent) / 1e6 for sent, _, st in rows], 50)
    out["bus_out_ms"] = _p([(got - st["sent_ns"]) / 1e6 for _, got, st in rows], 50)
    return out
