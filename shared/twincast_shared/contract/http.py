"""The JSON bodies of the gateway's HTTP endpoints: what callers send, what they get back.

Every refusal is an `ErrorBody`. Pages and tests read these as plain JSON; the names of the
fields are the wire. Knows nothing of aiohttp.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from twincast_shared.contract.events import AuditRecord, Scope, Token

MAX_SDP_CHARS: Final = 64 * 1024
MAX_SAY_CHARS: Final = 4_000


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorBody(_Body):
    """Every refusal: `error` says why; some say more (who holds the floor, known kinds)."""

    error: str
    holder: str | None = None
    known_kinds: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# Guest signalling: `POST /api/sessions`


class GuestOffer(_Body):
    model_config = ConfigDict(frozen=True, extra="ignore")  # as lenient as it always was

    token: str
    sdp: str  # its size and shape are the session's to judge, with its own messages


class GuestAnswer(_Body):
    session_id: str
    peer_id: str
    type: Literal["answer"] = "answer"
    sdp: str


class ServiceStatus(_Body):
    """`GET /api/status`: which workers are ready, how many sessions are live here."""

    services: dict[str, bool]
    sessions: int


# The owner's console


class ConsoleOffer(_Body):
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class ConsoleAnswer(_Body):
    peer_id: str
    type: Literal["answer"] = "answer"
    sdp: str


class FloorHolding(_Body):
    holder: str
    fence: int


class ConsoleSession(_Body):
    session_id: str
    guest_id: str | None
    scope: Scope
    created: str
    guests: int
    floor: FloorHolding | None
    shadow: bool


class ConsoleSessions(_Body):
    twin: str
    sessions: list[ConsoleSession]


class FloorRequest(_Body):
    """Take (`fence` absent), renew or release the floor for one console."""

    console: Token
    fence: int | None = Field(default=None, ge=1)


class FloorTaken(_Body):
    holder: str
    fence: int
    lease_ms: int


class LeaseRenewed(_Body):
    lease_ms: int


class FloorReleased(_Body):
    holder: Literal["twin"] = "twin"


class SayRequest(_Body):
    text: str = Field(min_length=1, max_length=MAX_SAY_CHARS)
    console: Token | None = None
    fence: int | None = Field(default=None, ge=1)


class SayAccepted(_Body):
    say_id: str


class ShadowRequest(_Body):
    on: bool


class ShadowState(_Body):
    shadow: bool


class DecisionRequest(_Body):
    decision: Literal["approve", "edit", "reject"]
    text: str = Field(default="", max_length=MAX_SAY_CHARS)


class DecisionAccepted(_Body):
    decision: Literal["approve", "edit", "reject"]


class AuditLog(_Body):
    session_id: str
    records: list[AuditRecord]


# The owner's signals: `/api/twins/{twin}/signals`


class SignalIn(_Body):
    """One measurement as posted; the body is one of these or a list of them."""

    kind: str
    value: float
    ts: datetime | None = None


class SignalsAccepted(_Body):
    accepted: int


class SignalsStored(_Body):
    enabled: bool
    signals: dict[str, dict[str, Any]]


class SignalsErased(_Body):
    erased: int


class Consent(_Body):
    enabled: StrictBool


class ConsentSet(_Body):
    enabled: bool
    erased: int
