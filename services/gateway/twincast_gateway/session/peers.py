"""A session's peer connections, every one in one place: opened here, closed here on hang-up,
on failure and on shutdown. Knows nothing of media or of what the messages mean."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection

from twincast_shared.contract.datachannel import ToPage

PeerRole = Literal["guest", "viewer", "ingest", "owner"]
Gone = Callable[["Peer", bool], Awaitable[None]]


@dataclass
class Peer:
    id: str
    pc: RTCPeerConnection
    role: PeerRole
    events: list[RTCDataChannel] = field(default_factory=list)
    animation: list[RTCDataChannel] = field(default_factory=list)


class Peers:
    """`on_gone(peer, notify)` runs once for each peer, after its connection is closed;
    `notify` is False when the session itself closes it (a refused offer, shutdown)."""

    def __init__(self, rtc: RTCConfiguration, *, on_gone: Gone) -> None:
        self._rtc = rtc
        self._on_gone = on_gone
        self._peers: dict[str, Peer] = {}

    def __len__(self) -> int:
        return len(self._peers)

    def __iter__(self) -> Iterator[Peer]:
        return iter(list(self._peers.values()))

    def get(self, peer_id: str) -> Peer | None:
        return self._peers.get(peer_id)

    def open(self, role: PeerRole) -> Peer:
        peer = Peer(uuid.uuid4().hex, RTCPeerConnection(configuration=self._rtc), role)
        self._peers[peer.id] = peer
        pc = peer.pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.drop(peer.id, notify=True)

        return peer

    async def drop(self, peer_id: str, *, notify: bool) -> None:
        peer = self._peers.pop(peer_id, None)
        if peer is None:
            return
        await peer.pc.close()
        await self._on_gone(peer, notify)

    async def close(self) -> None:
        for peer_id in list(self._peers):
            await self.drop(peer_id, notify=False)

    def broadcast(self, message: ToPage, *, owners_only: bool = False) -> None:
        text: str | None = None
        for peer in self._peers.values():
            if owners_only and peer.role != "owner":
                continue
            for channel in peer.events:
                if channel.readyState == "open":
                    text = text if text is not None else message.to_json()
                    channel.send(text)

    def animate(self, payload: str) -> None:
        for peer in self._peers.values():
            for channel in peer.animation:
                if channel.readyState == "open":
                    channel.send(payload)


def send(channel: RTCDataChannel, message: ToPage) -> None:
    if channel.readyState == "open":
        channel.send(message.to_json())
