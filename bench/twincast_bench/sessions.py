"""How many live avatar sessions one gateway process holds at 25 fps.

The gateway runs alone in its own process (with NATS and Valkey); this process opens WHEP
viewers on loopback, each a separate session with its own face, voice and encoder. Viewers
count frames as they arrive complete from the network and do not decode them: decoding is
the viewer's cost, not the gateway's, and would take the cores the gateway is measured on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psutil
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from twincast.runtime import private_stack
from twincast_testkit.rtc_client import post_sdp
from twincast_testkit.stats import percentile


@dataclass
class _Arrivals:
    times: list[float] = field(default_factory=list)


class _CountingDecoder:
    def __init__(self, arrivals: _Arrivals) -> None:
        self._arrivals = arrivals

    def decode(self, encoded_frame: Any) -> list[Any]:
        self._arrivals.times.append(time.monotonic())
        return []


_by_receiver: dict[int, _Arrivals] = {}


def _patch_decoders() -> None:
    import aiortc.rtcrtpreceiver as receiver

    original = getattr(receiver, "get_decoder")  # noqa: B009  (not re-exported, patched below)

    def get_decoder(codec: Any) -> Any:
        if codec.mimeType.lower().startswith("video/"):
            arrivals = _Arrivals()
            _by_receiver[len(_by_receiver)] = arrivals
            return _CountingDecoder(arrivals)
        return original(codec)

    setattr(receiver, "get_decoder", get_decoder)  # noqa: B010


async def _viewer(http: aiohttp.ClientSession, url: str, token: str) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    status, _, answer = await post_sdp(http, f"{url}/whep", pc, token=token)
    if status != 201:
        raise RuntimeError(f"WHEP refused: {status} {answer}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc


def _p95(values: list[float]) -> float:
    return percentile(values, 95) if values else 0.0


def _gateway_process() -> psutil.Process:
    for child in psutil.Process().children(recursive=True):
        if "gateway" in " ".join(child.cmdline()):
            return child
    raise RuntimeError("gateway process not found")


async def _measure(
    url: str, token: str, count: int, *, warm_s: float, measure_s: float
) -> dict[str, Any]:
    _by_receiver.clear()
    gateway = _gateway_process()
    async with aiohttp.ClientSession() as http:
        peers = [await _viewer(http, url, token) for _ in range(count)]
        try:
            await asyncio.sleep(warm_s)
            start = time.monotonic()
            cpu0 = gateway.cpu_times()
            await asyncio.sleep(measure_s)
            end = time.monotonic()
            cpu1 = gateway.cpu_times()
            rss = gateway.memory_info().rss / 2**20
        finally:
            await asyncio.gather(*(pc.close() for pc in peers))
    gaps: list[float] = []
    fps: list[float] = []
    for arrivals in _by_receiver.values():
        window = [t for t in arrivals.times if start <= t <= end]
        fps.append(len(window) / (end - start))
        gaps += [(b - a) * 1000 for a, b in itertools.pairwise(window)]
    busy = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (end - start)
    return {
        "sessions": count,
        "fps_min": round(min(fps, default=0), 1),
        "fps_median": round(statistics.median(fps) if fps else 0, 1),
        "frame_gap_ms_p95": round(_p95(gaps), 1),
        "gateway_cores_busy": round(busy, 2),
        "gateway_rss_mb": round(rss, 1),
    }


async def _ramp(
    url: str, token: str, counts: list[int], warm_s: float, measure_s: float
) -> dict[str, Any]:
    from twincast_testkit.turns import configure_client_ice

    configure_client_ice()
    _patch_decoders()
    idle_rss = _gateway_process().memory_info().rss / 2**20
    steps = []
    held = 0
    for count in counts:
        step = await _measure(url, token, count, warm_s=warm_s, measure_s=measure_s)
        steps.append(step)
        print(json.dumps(step), file=sys.stderr)
        ok = step["frame_gap_ms_p95"] <= 60 and step["fps_min"] >= 24
        if not ok:
            break
        held = count
        await asyncio.sleep(1.0)
    best = next((s for s in steps if s["sessions"] == held), None)
    return {
        "sessions_at_25fps": held,
        "frame_gap_ms_p95": best["frame_gap_ms_p95"] if best else None,
        "rss_mb_per_session": round((best["gateway_rss_mb"] - idle_rss) / held, 1)
        if best and held
        else None,
        "gateway_idle_rss_mb": round(idle_rss, 1),
        "steps": steps,
        "cpu_count": psutil.cpu_count(),
        "load_avg_1m": round(psutil.getloadavg()[0], 2),
    }


def run(*, counts: list[int], warm_s: float = 2.0, measure_s: float = 8.0) -> dict[str, Any]:
    from twincast_gateway import TokenSigner

    secret = secrets.token_bytes(32)
    env = {
        "TWINCAST_GATEWAY_SECRET": secret.hex(),
        "TWINCAST_ICE_ADDRESSES": '["127.0.0.1"]',
        "TWINCAST_MAX_SESSIONS": str(max(counts) + 1),
    }
    with private_stack(["gateway"], env=env) as urls:
        assert urls.gateway is not None
        token = TokenSigner(secret=secret).issue(twin="juniper", scope="public", ttl_s=3600)
        return asyncio.run(_ramp(urls.gateway, token, counts, warm_s, measure_s))
