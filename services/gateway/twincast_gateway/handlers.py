"""gateway: the twin's front door. This module puts the parts together and is the bus side of
live sessions: `api/` answers HTTP, `session/` holds the peers and media, `avatar/` the face.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from twincast_gateway.api.console import ConsoleContext, OwnerConsole
from twincast_gateway.api.http import json_error, reply
from twincast_gateway.api.pages import GuestPages
from twincast_gateway.api.signalling import GuestSignalling, SignallingContext
from twincast_gateway.api.signals import OwnerSignalsApi
from twincast_gateway.api.tokens import JoinClaims, TokenSigner, load_or_create_secret
from twincast_gateway.avatar.faces import NoPortrait, PortraitFaces
from twincast_gateway.session.ice import configure_ice, rtc_configuration
from twincast_gateway.session.live import Face, LiveSession
from twincast_gateway.settings import GatewaySettings
from twincast_shared.bus import EVERY_REPLICA, read_audit
from twincast_shared.contract import (
    TURN_EVENT,
    AuditRecord,
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
from twincast_shared.contract.http import ServiceStatus
from twincast_shared.floor import Floor, Shadow
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.sessions import SessionInfo, open_session
from twincast_shared.twins import TwinProfile, get_profile

WORKERS = ("stt", "reasoning", "mood", "tts")
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
        settings = ctx.settings
        self.console = OwnerConsole(
            ConsoleContext(
                store=ctx.store,
                sessions=self.sessions,
                signer=lambda: self.signer,
                publish=bus.publish,
                read_audit=self._read_audit,
                floor=Floor(ctx.store, lease_ms=settings.floor_lease_ms),
                shadow=Shadow(ctx.store),
                ice_servers=tuple(settings.ice_servers),
            )
        )
        self._signalling = GuestSignalling(
            SignallingContext(
                signer=lambda: self.signer,
                sessions=self.sessions,
                open=self._open,
                end=self._ended,
            )
        )
        self._pages = GuestPages(
            store=ctx.store,
            signer=lambda: self.signer,
            twin=settings.twin,
            ice_servers=settings.ice_servers,
        )

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
        sessions = list(self.sessions.values())
        self.sessions.clear()
        await asyncio.gather(*(session.close() for session in sessions))
        if self._faces is not None:
            await self._faces.close()

    def routes(self) -> Iterable[web.RouteDef]:
        return (
            *self._pages.routes(),
            web.get("/api/status", self.status),
            *self._signalling.routes(),
            *self.console.routes(),
            *OwnerSignalsApi(
                store=self._ctx.store, bus=self._ctx.bus, signer=lambda: self.signer
            ).routes(),
        )

    async def status(self, _: web.Request) -> web.Response:
        results = await asyncio.gather(*(self._ready(name) for name in WORKERS))
        return reply(
            ServiceStatus(
                services=dict(zip(WORKERS, results, strict=True)), sessions=len(self.sessions)
            )
        )

    async def _ready(self, service: str) -> bool:
        try:
            reply = await self._ctx.bus.broker.request(b"", s.HEALTH.of(service), timeout=1.0)
        except Exception:
            return False
        return bool(json.loads(reply.body).get("ready"))

    async def _read_audit(self, session_id: str) -> list[AuditRecord]:
        return await read_audit(self._settings.nats_url, session_id)

    # Sessions

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
