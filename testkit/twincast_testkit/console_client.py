"""The owner's console without a browser: an aiortc peer that watches one live session and
talks into it, and the console's HTTP calls (floor, say, shadow, drafts, audit)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from twincast_testkit.rtc_client import SPEECH_RMS, Microphone


class ConsoleError(RuntimeError):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body.get('error', body)}")
        self.status = status
        self.body = body


class OwnerConsoleClient:
    """`async with OwnerConsoleClient(base_url=..., token=owner_token) as console:`."""

    def __init__(self, *, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.mic = Microphone()
        self.peer_id = ""
        self.session_id = ""
        self.fence: int | None = None
        self.messages: list[tuple[float, dict[str, Any]]] = []
        # Loudness of what the console hears: the twin's line, then the guest's.
        self.heard: dict[str, list[tuple[float, float]]] = {"twin": [], "guest": []}
        self._pc: RTCPeerConnection | None = None
        self._events: RTCDataChannel | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._renewing: asyncio.Task[None] | None = None

    async def __aenter__(self) -> OwnerConsoleClient:
        self._http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self._token}"})
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        assert self._http is not None
        async with self._http.request(method, f"{self.base_url}{path}", json=body) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise ConsoleError(response.status, data)
            return dict(data)

    async def sessions(self) -> list[dict[str, Any]]:
        return list((await self.call("GET", "/api/console/sessions"))["sessions"])

    async def open(self, session_id: str) -> None:
        """Joins the session: hears both sides, sees the face, sends the owner's microphone."""
        self.session_id = session_id
        pc = self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver(self.mic, direction="sendrecv")
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        self._events = pc.createDataChannel("events")
        self._events.on("message", self._on_message)
        lines = iter(("twin", "guest"))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            line = next(lines, "guest") if track.kind == "audio" else "video"
            self._tasks.append(asyncio.create_task(self._consume(line, track)))

        await pc.setLocalDescription(await pc.createOffer())
        answer = await self.call(
            "POST",
            f"/api/console/sessions/{session_id}/peers",
            {"sdp": pc.localDescription.sdp},
        )
        self.peer_id = answer["peer_id"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def connected(self, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while not (self._events is not None and self._events.readyState == "open"):
            if time.monotonic() > deadline:
                raise TimeoutError("the console's data channel did not open")
            await asyncio.sleep(0.02)

    async def take_over(self) -> dict[str, Any]:
        got = await self.call(
            "POST", f"/api/sessions/{self.session_id}/floor", {"console": self.peer_id}
        )
        self.fence = int(got["fence"])
        # Like the console page: renew the lease while holding the floor.
        self.stop_renewing()
        self._renewing = asyncio.create_task(self._renew_every(int(got["lease_ms"]) / 3000))
        return got

    def stop_renewing(self) -> None:
        """What a console that vanishes does: the floor goes when its lease runs out."""
        if self._renewing is not None:
            self._renewing.cancel()
            self._renewing = None

    async def _renew_every(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await self.renew()
            except ConsoleError:
                return

    async def renew(self) -> dict[str, Any]:
        return await self.call(
            "POST",
            f"/api/sessions/{self.session_id}/floor/renew",
            {"console": self.peer_id, "fence": self.fence},
        )

    async def hand_back(self) -> dict[str, Any]:
        self.stop_renewing()
        done = await self.call(
            "POST",
            f"/api/sessions/{self.session_id}/floor/release",
            {"console": self.peer_id, "fence": self.fence},
        )
        self.fence = None
        return done

    async def say(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if self.fence is not None:
            body |= {"console": self.peer_id, "fence": self.fence}
        return await self.call("POST", f"/api/sessions/{self.session_id}/say", body)

    async def shadow(self, on: bool) -> dict[str, Any]:
        return await self.call("PUT", f"/api/sessions/{self.session_id}/shadow", {"on": on})

    async def decide(self, draft_id: str, decision: str, text: str = "") -> dict[str, Any]:
        return await self.call(
            "POST",
            f"/api/sessions/{self.session_id}/drafts/{draft_id}",
            {"decision": decision, "text": text},
        )

    async def audit(self) -> list[dict[str, Any]]:
        return list((await self.call("GET", f"/api/sessions/{self.session_id}/audit"))["records"])

    async def wait_message(
        self, match: Any, *, after: float = 0.0, timeout_s: float = 30
    ) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, message in self.messages:
                if t >= after and match(message):
                    return t, message
            await asyncio.sleep(0.02)
        raise TimeoutError("no such message from the gateway")

    async def close(self) -> None:
        self.stop_renewing()
        if self._pc is not None:
            await self._pc.close()
            self._pc = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _on_message(self, message: str | bytes) -> None:
        self.messages.append((time.monotonic(), json.loads(message)))

    async def _consume(self, line: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if line == "video" or not isinstance(frame, av.AudioFrame):
                    continue
                pcm = frame.to_ndarray().astype(np.float32)
                rms = float(np.sqrt(np.mean(pcm * pcm))) if pcm.size else 0.0
                self.heard[line].append((time.monotonic(), rms))

    def hears(self, line: str, *, after: float) -> bool:
        return any(t >= after and rms > SPEECH_RMS for t, rms in self.heard[line])
