"""The mood service's latency over a real bus: its own process, nats-server and Valkey.

Per item of the set, in a fresh session: the item's audio as 20 ms `PcmChunk`s (as fast as the
bus takes them), 300 ms of quiet (the final transcript comes ~400 ms after the end of speech),
then the final transcript. Latency is from publishing the transcript to receiving the
`MoodEstimated` it caused. A transcript that does not change the mood meaningfully publishes
nothing (the service publishes changes only), so `published_share` says how many did.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Final
from uuid import uuid4

import nats
import nats.aio.msg

from twincast.runtime import Stack
from twincast_bench.mood_set import Line, audio_path, lines, load_pcm
from twincast_shared.contract import MoodEstimated, PcmChunk, UtteranceTranscribed
from twincast_shared.contract import subjects as s
from twincast_shared.sessions import SessionInfo, open_session
from twincast_shared.store import StateStore
from twincast_testkit.stats import percentile

JSON: Final = {"content-type": "application/json"}
WAIT_S: Final = 1.0


async def _item(
    nc: nats.aio.client.Client, store: StateStore, line: Line, pcm: bytes
) -> float | None:
    session = uuid4().hex
    await open_session(store, SessionInfo(session_id=session, twin_id="juniper"))
    words = UtteranceTranscribed(session_id=session, utterance_id="u1", text=line.text, final=True)
    got: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def on_mood(msg: nats.aio.msg.Msg) -> None:
        mood = MoodEstimated.model_validate_json(msg.data)
        if mood.source_event_id == words.event_id and not got.done():
            got.set_result(time.perf_counter())

    sub = await nc.subscribe(s.MOOD.of(session), cb=on_mood)
    for seq, start in enumerate(range(0, len(pcm), 640)):
        chunk = PcmChunk(pcm=pcm[start : start + 640], sample_rate=16_000, seq=seq, stream="g")
        await nc.publish(s.AUDIO_IN.of(session), chunk.pcm, headers=chunk.headers())
    await nc.flush()
    await asyncio.sleep(0.3)
    sent = time.perf_counter()
    await nc.publish(s.STT_FINAL.of(session), words.model_dump_json().encode(), headers=JSON)
    try:
        received = await asyncio.wait_for(got, WAIT_S)
    except TimeoutError:
        return None
    finally:
        await sub.unsubscribe()
    return 1000 * (received - sent)


async def _measure(nats_url: str, redis_url: str) -> list[float | None]:
    items = [line for line in lines() if line.kind != "calibration"]
    store = StateStore.from_url(redis_url)
    nc = await nats.connect(nats_url, connect_timeout=5)
    try:
        return [await _item(nc, store, line, load_pcm(audio_path(line))) for line in items]
    finally:
        await nc.drain()
        await store.close()


def run_bus_latency() -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="twincast-bench-mood-") as tmp,
        Stack(
            state_dir=Path(tmp), services=("mood",), nats_port=0, redis_port=0, health_ports={}
        ) as stack,
    ):
        assert stack.urls is not None
        found = asyncio.run(_measure(stack.urls.nats, stack.urls.redis))
    measured = sorted(x for x in found if x is not None)
    return {
        "latency_ms_p50": round(statistics.median(measured), 2) if measured else None,
        "latency_ms_p95": round(percentile(measured, 95), 2) if measured else None,
        "published_share": round(len(measured) / len(found), 3),
        "latency_is": "final transcript published -> MoodEstimated received, over nats-server",
    }
