"""What every JSON route of the gateway does the same way: errors, bearer tokens, bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from twincast_gateway.api.tokens import JoinClaims, TokenError, TokenSigner


def json_error(status: type[web.HTTPException], reason: str, **more: Any) -> web.HTTPException:
    return status(text=json.dumps({"error": reason, **more}), content_type="application/json")


def bearer_claims(request: web.Request, signer: TokenSigner) -> JoinClaims:
    """The verified claims of `Authorization: Bearer <token>`; 401 if missing or bad."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        raise json_error(web.HTTPUnauthorized, "a token is required as Authorization: Bearer")
    try:
        return signer.verify(auth.removeprefix("Bearer ").strip())
    except TokenError as error:
        raise json_error(web.HTTPUnauthorized, str(error)) from None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes, whether or not it says its length."""
    too_large = f"request larger than {limit // 1024} KiB"
    if (request.content_length or 0) > limit:
        raise json_error(web.HTTPRequestEntityTooLarge, too_large)
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise json_error(web.HTTPRequestEntityTooLarge, too_large)
    return raw
