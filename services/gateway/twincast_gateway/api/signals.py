"""The owner's signals over HTTP: wearables and calendars post them, the owner switches them off.

- `POST /api/twins/{twin}/signals`: `{"kind", "value", "ts"?}` or a list of up to 100 of them →
  202 `{"accepted": n}`. All or nothing: one unknown kind or implausible value refuses the
  lot (422, with every reason). Off → 409, nothing is published or stored.
- `GET /api/twins/{twin}/signals`: what is stored now (the owner may always look).
- `DELETE /api/twins/{twin}/signals`: erase what is stored.
- `GET`/`PUT /api/twins/{twin}/signals/consent` `{"enabled": bool}`: off erases everything
  stored at once.

Every route needs `Authorization: Bearer <token>` with role `owner` for that twin: no or a
forged, malformed or expired token → 401, a guest's token or another twin's → 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from aiohttp import web
from pydantic import ValidationError

from twincast_gateway.api.http import (
    bearer_claims,
    json_error,
    read_json,
    read_model,
    reply,
    validation_reason,
)
from twincast_gateway.api.tokens import TokenSigner
from twincast_shared.bus import Bus
from twincast_shared.contract import SIGNAL_KINDS, OwnerConsent, OwnerSignal
from twincast_shared.contract.http import (
    Consent,
    ConsentSet,
    SignalIn,
    SignalsAccepted,
    SignalsErased,
    SignalsStored,
)
from twincast_shared.contract.subjects import is_valid_token
from twincast_shared.moods import (
    erase_signals,
    set_signals_enabled,
    signals_enabled,
    stored_signals,
)
from twincast_shared.store import StateStore

MAX_BODY: Final = 64 * 1024
MAX_SIGNALS: Final = 100
NOT_A_SIGNAL: Final = 'expected {"kind": str, "value": number, "ts"?: time}'


class OwnerSignalsApi:
    def __init__(self, *, store: StateStore, bus: Bus, signer: Callable[[], TokenSigner]) -> None:
        self._store = store
        self._bus = bus
        self._signer = signer

    def routes(self) -> tuple[web.RouteDef, ...]:
        base = "/api/twins/{twin}/signals"
        return (
            web.post(base, self.post),
            web.get(base, self.list),
            web.delete(base, self.erase),
            web.get(f"{base}/consent", self.get_consent),
            web.put(f"{base}/consent", self.put_consent),
        )

    def _owner(self, request: web.Request) -> str:
        """The twin in the path, once the token proves its owner is asking."""
        twin = request.match_info["twin"]
        claims = bearer_claims(request, self._signer())
        if claims.role != "owner":
            raise json_error(web.HTTPForbidden, "only the twin's owner may do this")
        if not is_valid_token(twin) or claims.twin != twin:
            raise json_error(web.HTTPForbidden, "this token is for another twin")
        return twin

    async def post(self, request: web.Request) -> web.Response:
        twin = self._owner(request)
        body = await read_json(request, MAX_BODY)
        items = body if isinstance(body, list) else [body]
        if not items or len(items) > MAX_SIGNALS:
            raise json_error(web.HTTPBadRequest, f"send 1 to {MAX_SIGNALS} signals")
        signals, problems = [], []
        for i, item in enumerate(items):
            try:
                posted = _signal_in(item)
                if posted is None:
                    problems.append(
                        f'[{i}]: expected {{"kind": str, "value": number, "ts"?: time}}'
                    )
                    continue
                fields: dict[str, Any] = posted.model_dump(exclude_none=True)
                signals.append(OwnerSignal(session_id=twin, twin_id=twin, **fields))
            except ValidationError as error:
                problems.append(f"[{i}]: {validation_reason(error)}")
        if problems:
            raise json_error(
                web.HTTPUnprocessableEntity,
                "signals refused: " + "; ".join(problems)[:2_000],
                known_kinds={k: f"{v.low:g}..{v.high:g} {v.unit}" for k, v in SIGNAL_KINDS.items()},
            )
        if not await signals_enabled(self._store, twin):
            raise json_error(
                web.HTTPConflict,
                "the owner has switched signals off for this twin: nothing was stored",
            )
        for signal in signals:
            await self._bus.publish(signal)
        return reply(SignalsAccepted(accepted=len(signals)), status=202)

    async def list(self, request: web.Request) -> web.Response:
        twin = self._owner(request)
        stored = await stored_signals(self._store, twin)
        return reply(
            SignalsStored(
                enabled=await signals_enabled(self._store, twin),
                signals={k: v.model_dump() for k, v in sorted(stored.items())},
            )
        )

    async def erase(self, request: web.Request) -> web.Response:
        twin = self._owner(request)
        erased = await erase_signals(self._store, twin)
        return reply(SignalsErased(erased=erased))

    async def get_consent(self, request: web.Request) -> web.Response:
        twin = self._owner(request)
        return reply(Consent(enabled=await signals_enabled(self._store, twin)))

    async def put_consent(self, request: web.Request) -> web.Response:
        twin = self._owner(request)
        consent = await read_model(
            request, Consent, MAX_BODY, refused='expected JSON {"enabled": true|false}'
        )
        enabled = consent.enabled
        erased = await set_signals_enabled(self._store, twin, enabled)
        await self._bus.publish(OwnerConsent(session_id=twin, twin_id=twin, signals=enabled))
        return reply(ConsentSet(enabled=enabled, erased=erased))


def _signal_in(item: object) -> SignalIn | None:
    """One posted signal, or None when it is not even shaped like one."""
    if not isinstance(item, dict):
        return None
    try:
        return SignalIn.model_validate(item)
    except ValidationError as error:
        if any(e["type"] == "extra_forbidden" for e in error.errors()):
            return None
        raise
