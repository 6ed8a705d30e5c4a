"""The messages on a live session's `events` data channel, both ways, as the pages read them.

The gateway sends everything here except `TextMessage`, which the guest page sends. The
`animation` channel carries `AnimationFrame` (events.py), not these. Knows nothing of WebRTC:
a message is JSON text, made by `to_json` and read by `parse_message` / `parse_page_message`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_serializer,
    model_validator,
)

from twincast_shared.contract.events import Citation

MAX_MESSAGE_BYTES: Final = 8 * 1024
_EXPECTED_TEXT: Final = 'expected {"type": "text", "text": "..."}'


class MessageError(ValueError):
    """A data-channel message that cannot be read; the text says why and is safe to send back."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Fields left out of the JSON when they are None (the page tells the two apart by them).
    _omit_none: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=self._omit_none)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class _WithCitations(_Message):
    @field_serializer("citations", check_fields=False)
    def _cited(self, citations: tuple[Citation, ...]) -> list[dict[str, Any]]:
        return [c.model_dump(mode="json", exclude_none=True) for c in citations]


# Gateway → page


class Hello(_Message):
    """The first message on a channel: which session and twin this peer is in."""

    type: Literal["hello"] = "hello"
    session_id: str
    twin: str


class ErrorMessage(_Message):
    """What the gateway refused of what the page sent."""

    type: Literal["error"] = "error"
    error: str


class Caption(_Message):
    """Either side's words as they are heard: partial, then final, one line per utterance."""

    type: Literal["caption"] = "caption"
    who: Literal["guest", "owner"]
    utterance_id: str
    text: str
    final: bool


class Reply(_WithCitations):
    """One sentence of the answer heard by the guest; `author` "owner" for the owner's words."""

    type: Literal["reply"] = "reply"
    reply_id: str
    seq: int = Field(ge=0)
    text: str
    final: bool
    deferred: bool
    author: Literal["twin", "owner"]
    citations: tuple[Citation, ...] = ()


class Draft(_WithCitations):
    """Shadow mode, to owners only: an answer waiting for the owner's decision."""

    type: Literal["draft"] = "draft"
    draft_id: str
    question: str
    text: str
    deferred: bool
    citations: tuple[Citation, ...] = ()


class Floor(_Message):
    """Who holds the floor: the owner (with the console holding it) or the twin again (why)."""

    _omit_none: ClassVar[bool] = True

    type: Literal["floor"] = "floor"
    holder: Literal["owner", "twin"]
    console: str | None = None
    reason: Literal["owner", "expired"] | None = None

    @model_validator(mode="after")
    def _says_whose(self) -> Floor:
        if self.holder == "owner" and (self.console is None or self.reason is not None):
            raise ValueError("the owner's floor names its console, and no reason")
        if self.holder == "twin" and (self.reason is None or self.console is not None):
            raise ValueError("the floor handed back names its reason, and no console")
        return self


class Interrupted(_Message):
    """A barge-in flushed the twin's queued speech."""

    type: Literal["interrupted"] = "interrupted"


class Speaking(_Message):
    """A reply's first sound left the gateway; `at` is CLOCK_MONOTONIC of the gateway host."""

    type: Literal["speaking"] = "speaking"
    reply_id: str
    at: float


class Mood(_Message):
    """To owners only: the guest's mood as estimated."""

    type: Literal["mood"] = "mood"
    label: str
    valence: float
    arousal: float


class Ducked(_Message):
    """The guest's voice came up over the twin's: the twin is paused (CLOCK_MONOTONIC)."""

    type: Literal["ducked"] = "ducked"
    at: float


class Resumed(_Message):
    """No confirmed speech followed a duck: the twin goes on where it stopped."""

    type: Literal["resumed"] = "resumed"
    at: float


# Page → gateway


class TextMessage(_Message):
    """A question the guest typed."""

    type: Literal["text"] = "text"
    text: str


ToPage = Annotated[
    Hello
    | ErrorMessage
    | Caption
    | Reply
    | Draft
    | Floor
    | Interrupted
    | Speaking
    | Mood
    | Ducked
    | Resumed,
    Field(discriminator="type"),
]
DataChannelMessage = Annotated[
    Hello
    | ErrorMessage
    | Caption
    | Reply
    | Draft
    | Floor
    | Interrupted
    | Speaking
    | Mood
    | Ducked
    | Resumed
    | TextMessage,
    Field(discriminator="type"),
]
_TO_PAGE: Final[TypeAdapter[ToPage]] = TypeAdapter(ToPage)
_ANY: Final[TypeAdapter[DataChannelMessage]] = TypeAdapter(DataChannelMessage)


def _load(raw: str | bytes, limit: int) -> dict[str, Any]:
    if len(raw) > limit:
        raise MessageError(f"message larger than {limit // 1024} KiB")
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise MessageError(f"not JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise MessageError('a message is a JSON object with a "type"')
    return data


def _reason(error: ValidationError) -> str:
    item = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in item["loc"][1:])  # [0] is the union's tag
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def parse_message(raw: str | bytes, *, limit: int = MAX_MESSAGE_BYTES) -> DataChannelMessage:
    """Any message of either direction; `MessageError` says what is wrong with a bad one."""
    data = _load(raw, limit)
    try:
        return _ANY.validate_python(data)
    except ValidationError as error:
        raise MessageError(f"{data['type'][:32]!r} message: {_reason(error)}") from None


def parse_page_message(raw: str | bytes, *, limit: int = MAX_MESSAGE_BYTES) -> TextMessage:
    """What a page may send the gateway: a typed question."""
    data = _load(raw, limit)
    if data["type"] != "text":
        raise MessageError(_EXPECTED_TEXT)
    try:
        return TextMessage.model_validate(data)
    except ValidationError as error:
        item = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in item["loc"])
        raise MessageError(f"{where}: {item['msg']}" if where else _EXPECTED_TEXT) from None


def to_page(data: dict[str, Any]) -> ToPage:
    """A gateway → page message from its JSON object (one made by `to_dict`)."""
    try:
        return _TO_PAGE.validate_python(data)
    except ValidationError as error:
        raise MessageError(_reason(error)) from None
