"""gateway: the twin's front door. Pages, signalling (JSON, WHIP, WHEP) and the bus side of
live sessions; the media itself is in `live` and `media`."""

from __future__ import annotations

import asyncio
import html
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from twincast_gateway.api.console import OwnerConsole
from twincast_gateway.api.http import json_error
from twincast_gateway.api.pages import page_fields, static_text
from twincast_gateway.api.signals import OwnerSignalsApi
from twincast_gateway.api.tokens import JoinClaims, TokenError, TokenSigner, load_or_create_secret
from twincast_gateway.avatar.faces import NoPortrait, PortraitFaces
from twincast_gateway.session.ice import configure_ice, rtc_configuration
from twincast_gateway.session.live import Face, LiveSession, PeerRole, SignallingError
from twincast_gateway.settings import GatewaySettings
from twincast_shared.bus import EVERY_REPLICA
from twincast_shared.contract import (
    TURN_EVENT,
    MoodEstimated,
    PcmChunk,
    ReplyChunk,
    ReplyDrafted,
    SessionEnded,
    SpeechStarted,
    TurnEvent,
    UtteranceTranscribed,
    VisemeTrack,
)
from twincast_shared.contract import subjects as s
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.sessions import SessionInfo, open_session
from twincast_shared.twins import TwinProfile, get_profile

WORKERS = ("stt", "reasoning", "mood", "tts")
MAX_JSON_BYTES = 80 * 1024
FaceFactory = Callable[[TwinProfile], Awaitable[Face]]


class GatewayService(BaseService):
    def __init__(
        self, ctx: ServiceContext[GatewaySettings], *, face_factory: FaceFactory | None = None
    ) -> None:
        self._ctx = self.ctx = ctx
        self._settings = self.settings = ctx.settings
        self._face_factory = face_factory
        self._faces: PortraitFaces | None = None
        self._signer: TokenSigner | None = None
        self.sessions: dict[str, LiveSession] = {}
        self._rtc = rtc_configuration(ctx.settings.ice_servers)
        bus = ctx.bus
        # Every replica hears every session's events and keeps those of its own peers.
        bus.on_event(s.TURN, TURN_EVENT, self._turn, queue=EVERY_REPLICA, accept=self._mine)
        bus.on_event(s.REPLY, ReplyChunk, self._reply, queue=EVERY_REPLICA, accept=self._mine)
        bus.on_event(
            s.STT_PARTIAL,
            UtteranceTranscribed,
            self._caption,
            queue=EVERY_REPLICA,
            accept=self._mine,
        )
        bus.on_event(
            s.STT_FINAL,
            UtteranceTranscribed,
            self._caption,
            queue=EVERY_REPLICA,
            accept=self._mine,
        )
        bus.on_event(s.MOOD, MoodEstimated, self._mood, queue=EVERY_REPLICA, accept=self._mine)
        bus.on_event(
            s.TTS_VISEMES, VisemeTrack, self._visemes, queue=EVERY_REPLICA, accept=self._mine
        )
        bus.on_audio(s.TTS_AUDIO, self._speech, queue=EVERY_REPLICA, accept=self._mine)
        bus.on_event(s.DRAFT, ReplyDrafted, self._draft, queue=EVERY_REPLICA, accept=self._mine)
        self.console = OwnerConsole(self)

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            raise RuntimeError("gateway not started")
        return self._signer

    async def start(self) -> None:
        settings = self._settings
        secret = (
            bytes.fromhex(settings.gateway_secret.get_secret_value())
            if settings.gateway_secret is not None
            else load_or_create_secret(settings.secret_file)
        )
        self._signer = TokenSigner(secret=secret)
        configure_ice(addresses=settings.ice_addresses, mdns=settings.ice_mdns)
        if self._face_factory is None:
            faces = PortraitFaces(self._ctx.store)
            faces.preload(settings.twin)
            self._face_factory = self._faces = faces

    async def close(self) -> None:
        await self.console.close()
        sessions, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(session.close() for session in sessions))
        if self._faces is not None:
            await self._faces.close()

    def routes(self) -> Iterable[web.RouteDef]:
        return (
            web.get("/", self.landing),
            web.get("/join/{token}", self.join_page),
            web.get("/static/{name}", self.static),
            web.get("/api/status", self.status),
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
            *self.console.routes(),
            *OwnerSignalsApi(
                store=self._ctx.store, bus=self._ctx.bus, signer=lambda: self.signer
            ).routes(),
        )

    # Pages

    async def landing(self, _: web.Request) -> web.Response:
        fields = await page_fields(self._ctx.store, self._settings.twin)
        body = static_text("landing.html").format(**fields)
        return web.Response(text=body, content_type="text/html")

    async def join_page(self, request: web.Request) -> web.Response:
        try:
            claims = self.signer.verify(request.match_info["token"])
        except TokenError as error:
            page = static_text("refused.html").format(reason=html.escape(str(error)))
            return web.Response(status=401, text=page, content_type="text/html")
        config = {
            "token": request.match_info["token"],
            "iceServers": [
                server.model_dump(exclude_none=True) for server in self._settings.ice_servers
            ],
            "twin": claims.twin,
        }
        fields = await page_fields(self._ctx.store, claims.twin)
        fields["config"] = html.escape(json.dumps(config), quote=True)
        return web.Response(
            text=static_text("guest.html").format(**fields), content_type="text/html"
        )

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kinds = {
            "common.js": "text/javascript",
            "guest.js": "text/javascript",
            "guest.css": "text/css",
            "console.js": "text/javascript",
            "console.css": "text/css",
        }
        if name not in kinds:
            raise web.HTTPNotFound()
        return web.Response(text=static_text(name), content_type=kinds[name])

    async def status(self, _: web.Request) -> web.Response:
        results = await asyncio.gather(*(self._ready(name) for name in WORKERS))
        return web.json_response(
            {
                "services": dict(zip(WORKERS, results, strict=True)),
                "sessions": len(self.sessions),
            }
        )

    async def _ready(self, service: str) -> bool:
        try:
            reply = await self._ctx.bus.broker.request(b"", s.HEALTH.of(service), timeout=1.0)
        except Exception:
            return False
        return bool(json.loads(reply.body).get("ready"))

    # Signalling

    async def create_session(self, request: web.Request) -> web.Response:
        """The guest page's offer: `{"token", "sdp"}` → `{"session_id", "peer_id", "sdp"}`."""
        if (request.content_length or 0) > MAX_JSON_BYTES:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_JSON_BYTES,
                actual_size=request.content_length or 0,
                text=json.dumps({"error": "request larger than 80 KiB"}),
                content_type="application/json",
            )
        try:
            body = json.loads(await request.text())
            token, sdp = body["token"], body["sdp"]
            if not isinstance(token, str) or not isinstance(sdp, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise json_error(
                web.HTTPBadRequest, 'expected JSON {"token": str, "sdp": str}'
            ) from None
        claims = self._claims(token)
        session = await self._open(claims)
        peer, answer = await self._connect(session, sdp, role="guest")
        return web.json_response(
            {"session_id": session.id, "peer_id": peer, "type": "answer", "sdp": answer},
            status=201,
        )

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
            raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/sdp")
        if (request.content_length or 0) > MAX_JSON_BYTES:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_JSON_BYTES, actual_size=request.content_length or 0
            )
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise web.HTTPUnauthorized(
                text="a join token is required as Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        claims = self._claims(auth.removeprefix("Bearer ").strip(), plain=True)
        wanted = request.query.get("session")
        if wanted is not None:
            session = self.sessions.get(wanted)
            if session is None or session.info.twin_id != claims.twin:
                raise web.HTTPNotFound(text="no such live session for this token")
        else:
            session = await self._open(claims)
        peer, answer = await self._connect(session, await request.text(), role=role, plain=True)
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
        session = self.sessions.get(request.match_info["session"])
        peer = request.match_info["peer"]
        if session is None or not session.has_peer(peer):
            raise json_error(web.HTTPNotFound, "no such session or peer")
        await session.hang_up(peer)
        return web.Response(status=200)

    def _claims(self, token: str, *, plain: bool = False) -> JoinClaims:
        try:
            return self.signer.verify(token)
        except TokenError as error:
            if plain:
                raise web.HTTPUnauthorized(
                    text=str(error), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
                ) from None
            raise json_error(web.HTTPUnauthorized, str(error)) from None

    async def _open(self, claims: JoinClaims) -> LiveSession:
        if len(self.sessions) >= self._settings.max_sessions:
            raise json_error(web.HTTPServiceUnavailable, "the gateway is at its session limit")
        profile = await get_profile(self._ctx.store, claims.twin)
        if profile is None:
            raise json_error(web.HTTPNotFound, f"no twin {claims.twin!r} here")
        assert self._face_factory is not None
        try:
            face = await self._face_factory(profile)
        except NoPortrait as error:
            raise json_error(web.HTTPConflict, str(error)) from None
        info = SessionInfo(
            session_id=uuid.uuid4().hex,
            twin_id=claims.twin,
            guest_id=claims.guest,
            scope=claims.scope,
        )
        await open_session(self._ctx.store, info)
        session = LiveSession(
            info=info,
            face=face,
            fps=self._settings.fps,
            rtc=self._rtc,
            publish_audio=lambda chunk: self._ctx.bus.publish_audio(
                s.AUDIO_IN.of(info.session_id), chunk
            ),
            publish_text=self._ctx.bus.publish,
            publish_animation=self._ctx.bus.publish,
            on_empty=self._ended,
            publish_owner_audio=lambda chunk: self._ctx.bus.publish_audio(
                s.AUDIO_OWNER.of(info.session_id), chunk
            ),
            publish_audit=self._ctx.bus.record,
        )
        self.sessions[session.id] = session
        self._ctx.log.info("session %s opened (twin %s, %s)", session.id, info.twin_id, info.scope)
        return session

    async def _connect(
        self, session: LiveSession, sdp: str, *, role: PeerRole, plain: bool = False
    ) -> tuple[str, str]:
        try:
            return await session.connect(sdp, role=role)
        except SignallingError as error:
            if not session.peers:
                await self._ended(session)
            if plain:
                raise web.HTTPBadRequest(text=str(error)) from None
            raise json_error(web.HTTPBadRequest, str(error)) from None

    async def _ended(self, session: LiveSession) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        await session.close()
        await self._ctx.bus.publish(SessionEnded(session_id=session.id))
        self._ctx.log.info("session %s ended", session.id)

    # The bus side

    async def _mine(self, session_id: str) -> bool:
        return session_id in self.sessions

    async def _turn(self, event: TurnEvent) -> None:
        if (session := self.sessions.get(event.session_id)) is None:
            return
        if isinstance(event, SpeechStarted):
            session.on_speech_started()
        else:
            session.on_speech_ended(event.utterance_id)

    async def _reply(self, event: ReplyChunk) -> None:
        if session := self.sessions.get(event.session_id):
            session.on_reply(event)

    async def _caption(self, event: UtteranceTranscribed) -> None:
        if session := self.sessions.get(event.session_id):
            session.on_transcript(event)

    async def _mood(self, event: MoodEstimated) -> None:
        if session := self.sessions.get(event.session_id):
            session.on_mood(event)

    async def _draft(self, event: ReplyDrafted) -> None:
        if session := self.sessions.get(event.session_id):
            session.on_draft(event)

    async def _visemes(self, event: VisemeTrack) -> None:
        if session := self.sessions.get(event.session_id):
            session.on_visemes(event)

    async def _speech(self, session_id: str, chunk: PcmChunk) -> None:
        if session := self.sessions.get(session_id):
            session.on_speech(chunk)


SPEC = ServiceSpec(name="gateway", settings=GatewaySettings, create=GatewayService)
