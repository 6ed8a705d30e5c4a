"""Guest signalling: the guest page's JSON offer, WHIP and WHEP, and hanging up a peer.

Knows nothing of the bus: sessions are opened and ended through the context it is given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from twincast_gateway.api.http import (
    bearer_token,
    json_error,
    read_body,
    read_model,
    reply,
    verified,
)
from twincast_gateway.api.tokens import JoinClaims, TokenSigner
from twincast_gateway.session.live import LiveSession, PeerRole, SignallingError
from twincast_shared.contract.http import GuestAnswer, GuestOffer

# An SDP offer is at most 64 KiB (LiveSession refuses more); this leaves room for the JSON.
MAX_OFFER_BYTES: Final = 80 * 1024


@dataclass(frozen=True)
class SignallingContext:
    signer: Callable[[], TokenSigner]
    sessions: Mapping[str, LiveSession]
    open: Callable[[JoinClaims], Awaitable[LiveSession]]
    end: Callable[[LiveSession], Awaitable[None]]


class GuestSignalling:
    def __init__(self, ctx: SignallingContext) -> None:
        self._ctx = ctx

    def routes(self) -> tuple[web.RouteDef, ...]:
        return (
            web.post("/api/sessions", self.create_session),
            web.delete("/api/sessions/{session}/peers/{peer}", self.hang_up),
            web.post("/whep", self.whep),
            web.post("/whip", self.whip),
            web.delete("/whep/{session}/{peer}", self.hang_up),
            web.delete("/whip/{session}/{peer}", self.hang_up),
            web.patch("/whep/{session}/{peer}", self.no_trickle),
            web.patch("/whip/{session}/{peer}", self.no_trickle),
            web.options("/whep", self.whip_options),
            web.options("/whip", self.whip_options),
        )

    async def create_session(self, request: web.Request) -> web.Response:
        """The guest page's offer: `GuestOffer` → 201 `GuestAnswer`."""
        offer = await read_model(
            request,
            GuestOffer,
            MAX_OFFER_BYTES,
            refused='expected JSON {"token": str, "sdp": str}',
        )
        claims = verified(self._ctx.signer(), offer.token)
        session = await self._ctx.open(claims)
        peer, answer = await self._connect(session, offer.sdp, role="guest")
        return reply(GuestAnswer(session_id=session.id, peer_id=peer, sdp=answer), status=201)

    async def whep(self, request: web.Request) -> web.Response:
        """WHEP (play the avatar): POST an SDP offer with a join token as Bearer."""
        return await self._whip_like(request, role="viewer", path="whep")

    async def whip(self, request: web.Request) -> web.Response:
        """WHIP (publish a guest's voice into a session): POST an SDP offer, Bearer token.

        `?session=` adds the voice to a session that a WHEP player opened.
        """
        return await self._whip_like(request, role="ingest", path="whip")

    async def _whip_like(self, request: web.Request, *, role: PeerRole, path: str) -> web.Response:
        if request.content_type != "application/sdp":
            raise json_error(web.HTTPUnsupportedMediaType, "Content-Type must be application/sdp")
        token = bearer_token(
            request, missing="a join token is required as Authorization: Bearer <token>"
        )
        claims = verified(self._ctx.signer(), token, bearer=True)
        sdp = (await read_body(request, MAX_OFFER_BYTES)).decode(errors="replace")
        wanted = request.query.get("session")
        if wanted is not None:
            session = self._ctx.sessions.get(wanted)
            if session is None or session.info.twin_id != claims.twin:
                raise json_error(web.HTTPNotFound, "no such live session for this token")
        else:
            session = await self._ctx.open(claims)
        peer, answer = await self._connect(session, sdp, role=role)
        return web.Response(
            status=201,
            text=answer,
            content_type="application/sdp",
            headers={
                "Location": f"/{path}/{session.id}/{peer}",
                "X-TwinCast-Session": session.id,
            },
        )

    async def whip_options(self, _: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Accept-Post": "application/sdp"})

    async def no_trickle(self, _: web.Request) -> web.Response:
        # RFC 9725: an endpoint without trickle ICE or ICE restarts answers PATCH with 405.
        raise web.HTTPMethodNotAllowed("PATCH", ["DELETE"])

    async def hang_up(self, request: web.Request) -> web.Response:
        session = self._ctx.sessions.get(request.match_info["session"])
        peer = request.match_info["peer"]
        if session is None or not session.has_peer(peer):
            raise json_error(web.HTTPNotFound, "no such session or peer")
        await session.hang_up(peer)
        return web.Response(status=200)

    async def _connect(self, session: LiveSession, sdp: str, *, role: PeerRole) -> tuple[str, str]:
        try:
            return await session.connect(sdp, role=role)
        except SignallingError as error:
            if not session.peers:
                await self._ctx.end(session)
            raise json_error(web.HTTPBadRequest, str(error)) from None
