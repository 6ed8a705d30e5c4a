"""The owner's console: watch the twin's live sessions, take the floor with your own voice and
hand it back, put words in the twin's mouth, approve its drafts, read the audit.

Every call needs the owner's token (`Authorization: Bearer`); a guest's token is refused and
the attempt goes into the session's audit.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from twincast_gateway.api.http import (
    bearer_claims,
    json_error,
    read_model,
    reply,
    validation_reason,
)
from twincast_gateway.api.pages import page_fields, static_text
from twincast_gateway.api.tokens import JoinClaims, TokenError, TokenSigner
from twincast_gateway.session.live import LiveSession, SignallingError
from twincast_gateway.settings import IceServer
from twincast_shared.contract import AnyEvent, AuditRecord, DraftDecided, HandBack, Say, TakeOver
from twincast_shared.contract.http import (
    AuditLog,
    ConsoleAnswer,
    ConsoleOffer,
    ConsoleSession,
    ConsoleSessions,
    DecisionAccepted,
    DecisionRequest,
    FloorHolding,
    FloorReleased,
    FloorRequest,
    LeaseRenewed,
    SayAccepted,
    SayRequest,
    ShadowRequest,
    ShadowState,
)
from twincast_shared.contract.http import FloorTaken as FloorTakenBody
from twincast_shared.floor import Floor, FloorTaken, Holding, Shadow
from twincast_shared.store import StateStore

log = logging.getLogger(__name__)

MAX_BODY: Final = 80 * 1024
B = TypeVar("B", bound=BaseModel)


@dataclass(frozen=True)
class ConsoleContext:
    """What the console needs of the gateway, and nothing else."""

    store: StateStore
    sessions: Mapping[str, LiveSession]
    signer: Callable[[], TokenSigner]
    publish: Callable[[AnyEvent], Awaitable[None]]
    read_audit: Callable[[str], Awaitable[list[AuditRecord]]]
    floor: Floor
    shadow: Shadow
    ice_servers: tuple[IceServer, ...]


class OwnerConsole:
    def __init__(self, ctx: ConsoleContext) -> None:
        self._ctx = ctx
        self._publish = ctx.publish
        self.floor = ctx.floor
        self.shadow = ctx.shadow
        self._watcher: asyncio.Task[None] | None = None
        # Holdings being handed back by their console: not the watcher's to call expired.
        self._releasing: set[Holding] = set()

    def _watch(self) -> None:
        """Watches the leases while any console holds a floor here (started on a takeover)."""
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch_leases(), name="console:leases")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None

    def routes(self) -> Iterable[web.RouteDef]:
        return (
            web.get("/console/{token}", self.page),
            web.get("/api/console/sessions", self.list_sessions),
            web.post("/api/console/sessions/{session}/peers", self.connect),
            web.post("/api/sessions/{session}/floor", self.take),
            web.post("/api/sessions/{session}/floor/renew", self.renew),
            web.post("/api/sessions/{session}/floor/release", self.release),
            web.post("/api/sessions/{session}/say", self.say),
            web.put("/api/sessions/{session}/shadow", self.set_shadow),
            web.post("/api/sessions/{session}/drafts/{draft}", self.decide),
            web.get("/api/sessions/{session}/audit", self.audit),
        )

    # Pages and listing

    async def page(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        try:
            claims = self._ctx.signer().verify(token)
        except TokenError as error:
            page = static_text("refused.html").format(reason=html.escape(str(error)))
            return web.Response(status=401, text=page, content_type="text/html")
        if claims.role != "owner":
            page = static_text("refused.html").format(reason="this link is not the owner's")
            return web.Response(status=403, text=page, content_type="text/html")
        fields = await page_fields(self._ctx.store, claims.twin)
        config = {
            "token": token,
            "twin": claims.twin,
            "iceServers": [s.model_dump(exclude_none=True) for s in self._ctx.ice_servers],
            "leaseMs": self.floor.lease_ms,
        }
        fields["config"] = html.escape(json.dumps(config), quote=True)
        body = static_text("console.html").format(**fields)
        return web.Response(text=body, content_type="text/html")

    async def list_sessions(self, request: web.Request) -> web.Response:
        claims = self._owner_claims(request)
        listed = []
        for session in list(self._ctx.sessions.values()):
            if session.info.twin_id != claims.twin:
                continue
            floor = session.floor
            listed.append(
                ConsoleSession(
                    session_id=session.id,
                    guest_id=session.info.guest_id,
                    scope=session.info.scope,
                    created=session.info.created.isoformat(),
                    guests=session.guests,
                    floor=FloorHolding(holder=floor.holder, fence=floor.fence) if floor else None,
                    shadow=await self.shadow.is_on(session.id),
                )
            )
        return reply(ConsoleSessions(twin=claims.twin, sessions=listed))

    async def connect(self, request: web.Request) -> web.Response:
        """The console joins a session: hears the guest and the twin, sees the face, and sends
        the owner's microphone (heard by the guest only while the console holds the floor)."""
        _, session = await self._owner_session(request)
        body = await _parse(request, ConsoleOffer)
        try:
            peer, answer = await session.connect(body.sdp, role="owner")
        except SignallingError as error:
            raise json_error(web.HTTPBadRequest, str(error)) from None
        return reply(ConsoleAnswer(peer_id=peer, sdp=answer), status=201)

    # The floor

    async def take(self, request: web.Request) -> web.Response:
        _, session = await self._owner_session(request, action="take the floor")
        body = await _parse(request, FloorRequest)
        if not session.has_peer(body.console, role="owner"):
            raise json_error(
                web.HTTPConflict, "connect this console to the session before taking the floor"
            )
        try:
            holding = await self.floor.take(session.id, body.console)
        except FloorTaken as taken:
            session.audit(
                kind="refused",
                speaker="owner",
                text=f"console {body.console} asked for the floor held by {taken.holding.holder}",
            )
            raise json_error(web.HTTPConflict, str(taken), holder=taken.holding.holder) from None
        self._watch()
        if session.floor != holding:
            session.take_over(holding)
            await self._publish(
                TakeOver(session_id=session.id, holder=holding.holder, fence=holding.fence)
            )
            session.audit(kind="floor", speaker="owner", text=f"taken by console {body.console}")
            log.info("session %s: owner took the floor (fence %d)", session.id, holding.fence)
        return reply(
            FloorTakenBody(holder=holding.holder, fence=holding.fence, lease_ms=self.floor.lease_ms)
        )

    async def renew(self, request: web.Request) -> web.Response:
        _, session = await self._owner_session(request)
        holding = _holding(await _parse(request, FloorRequest))
        if not await self.floor.renew(session.id, holding):
            raise json_error(web.HTTPConflict, "this console no longer holds the floor")
        return reply(LeaseRenewed(lease_ms=self.floor.lease_ms))

    async def release(self, request: web.Request) -> web.Response:
        _, session = await self._owner_session(request)
        holding = _holding(await _parse(request, FloorRequest))
        self._releasing.add(holding)
        try:
            released = await self.floor.release(session.id, holding)
        finally:
            self._releasing.discard(holding)
        if not released:
            raise json_error(web.HTTPConflict, "this console no longer holds the floor")
        await self._hand_back(session, holding, reason="owner")
        return reply(FloorReleased())

    async def _hand_back(
        self, session: LiveSession, holding: Holding, *, reason: Literal["owner", "expired"]
    ) -> None:
        if session.floor != holding:
            return  # someone else handed it back first
        session.hand_back(reason=reason)
        await self._publish(
            HandBack(
                session_id=session.id, holder=holding.holder, fence=holding.fence, reason=reason
            )
        )
        session.audit(kind="floor", speaker="system", text=f"handed back to the twin ({reason})")
        log.info("session %s: floor back to the twin (%s)", session.id, reason)

    async def _watch_leases(self) -> None:
        """A console that vanished stops renewing; when its lease runs out, the twin resumes."""
        period = min(0.25, self.floor.lease_ms / 4000)
        while any(s.floor is not None for s in self._ctx.sessions.values()):
            await asyncio.sleep(period)
            for session in list(self._ctx.sessions.values()):
                try:
                    await self._check_lease(session)
                except Exception as error:  # the store or bus hiccups: look again next round
                    log.warning("floor of session %s not checked: %s", session.id, error)

    async def _check_lease(self, session: LiveSession) -> None:
        holding = session.floor
        if holding is None or holding in self._releasing:
            return
        current = await self.floor.holder(session.id)
        if session.floor != holding:
            return  # handed back or taken while we asked
        if current is None:
            await self._hand_back(session, holding, reason="expired")
        elif current != holding:
            session.take_over(current)

    # Words

    async def say(self, request: web.Request) -> web.Response:
        _, session = await self._owner_session(request)
        body = await _parse(request, SayRequest)
        floor = session.floor
        if floor is not None and (body.console, body.fence) != (floor.holder, floor.fence):
            raise json_error(web.HTTPConflict, "another console holds the floor")
        event = Say(session_id=session.id, text=body.text)
        await self._publish(event)
        return reply(SayAccepted(say_id=event.event_id), status=202)

    async def set_shadow(self, request: web.Request) -> web.Response:
        _, session = await self._owner_session(request)
        body = await _parse(request, ShadowRequest)
        await self.shadow.set(session.id, body.on)
        session.audit(
            kind="draft", speaker="owner", text=f"shadow mode {'on' if body.on else 'off'}"
        )
        return reply(ShadowState(shadow=body.on))

    async def decide(self, request: web.Request) -> web.Response:
        _, session = await self._owner_session(request)
        body = await _parse(request, DecisionRequest)
        try:
            event = DraftDecided(
                session_id=session.id,
                draft_id=request.match_info["draft"],
                decision=body.decision,
                text=body.text,
            )
        except ValidationError as error:
            raise json_error(web.HTTPBadRequest, validation_reason(error)) from None
        if body.decision != "reject" and (holding := await self.floor.holder(session.id)):
            # Spoken now, the draft would be cut off by the owner's own voice; it stays pending.
            raise json_error(
                web.HTTPConflict,
                f"the floor is held by {holding.holder}: hand it back before the twin speaks",
            )
        await self._publish(event)
        session.audit(
            kind="draft", speaker="owner", text=f"draft {event.draft_id}: {body.decision}"
        )
        return reply(DecisionAccepted(decision=body.decision), status=202)

    async def audit(self, request: web.Request) -> web.Response:
        _, session = await self._owner_session(request)
        records = await self._ctx.read_audit(session.id)
        return reply(AuditLog(session_id=session.id, records=records))

    # Who is asking

    def _owner_claims(self, request: web.Request) -> JoinClaims:
        """The owner's claims; a guest's token may not even see which sessions are live."""
        claims = bearer_claims(request, self._ctx.signer())
        if claims.role != "owner":
            raise json_error(web.HTTPForbidden, "only the owner may use the console")
        return claims

    async def _owner_session(
        self, request: web.Request, *, action: str = "use the console"
    ) -> tuple[JoinClaims, LiveSession]:
        claims = bearer_claims(request, self._ctx.signer())
        session = self._ctx.sessions.get(request.match_info["session"])
        if session is None or session.info.twin_id != claims.twin:
            raise json_error(web.HTTPNotFound, "no such live session of this twin")
        if claims.role != "owner":
            session.audit(kind="refused", speaker="guest", text=f"a guest tried to {action}")
            log.warning("session %s: a guest token tried to %s", session.id, action)
            raise json_error(web.HTTPForbidden, f"only the owner may {action}")
        return claims, session


async def _parse(request: web.Request, model: type[B]) -> B:
    return await read_model(request, model, MAX_BODY)


def _holding(body: FloorRequest) -> Holding:
    if body.fence is None:
        raise json_error(web.HTTPBadRequest, "fence: the fence from taking the floor is needed")
    return Holding(holder=body.console, fence=body.fence)
