"""What every route of the gateway does the same way: errors, bearer tokens, bounded bodies.

Every refusal is an `ErrorBody` as JSON; every body is read with an explicit limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from twincast_gateway.api.tokens import JoinClaims, TokenError, TokenSigner
from twincast_shared.contract.http import ErrorBody

M = TypeVar("M", bound=BaseModel)


def json_error(
    status: type[web.HTTPException],
    reason: str,
    *,
    headers: Mapping[str, str] | None = None,
    **more: Any,
) -> web.HTTPException:
    body = ErrorBody(error=reason, **more)
    return status(text=json.dumps(body.to_dict()), content_type="application/json", headers=headers)


def reply(model: BaseModel, *, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


def validation_reason(error: ValidationError, *, most: int = 3) -> str:
    """The first few problems of a refused body, as `where: what`."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:most]:
        where = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def bearer_token(
    request: web.Request, *, missing: str = "a token is required as Authorization: Bearer"
) -> str:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        raise json_error(web.HTTPUnauthorized, missing, headers={"WWW-Authenticate": "Bearer"})
    return auth.removeprefix("Bearer ").strip()


def verified(signer: TokenSigner, token: str, *, bearer: bool = False) -> JoinClaims:
    """The token's claims; 401 if it is forged, malformed or expired."""
    try:
        return signer.verify(token)
    except TokenError as error:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if bearer else None
        raise json_error(web.HTTPUnauthorized, str(error), headers=headers) from None


def bearer_claims(request: web.Request, signer: TokenSigner) -> JoinClaims:
    """The verified claims of `Authorization: Bearer <token>`; 401 if missing or bad."""
    return verified(signer, bearer_token(request))


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes, whether or not it says its length."""
    if (request.content_length or 0) > limit:
        raise _too_large(limit, request.content_length or 0)
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise _too_large(limit, len(raw))
    return raw


def _too_large(limit: int, size: int) -> web.HTTPRequestEntityTooLarge:
    body = ErrorBody(error=f"request larger than {limit // 1024} KiB")
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=size,
        text=json.dumps(body.to_dict()),
        content_type="application/json",
    )


async def read_json(request: web.Request, limit: int) -> Any:
    raw = await read_body(request, limit)
    try:
        return json.loads(raw)
    except ValueError:
        raise json_error(web.HTTPBadRequest, "body is not valid JSON") from None


async def read_model(
    request: web.Request, model: type[M], limit: int, *, refused: str | None = None
) -> M:
    """The body as `model`; 400 with the problems, or with `refused` in their place."""
    raw = await read_body(request, limit)
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise json_error(web.HTTPBadRequest, refused or validation_reason(error)) from None
