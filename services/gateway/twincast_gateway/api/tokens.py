"""Join tokens: signed, expiring links to one twin for one audience scope.

A token is `base64url(json claims) "." base64url(HMAC-SHA256(secret, claims part))`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twincast_shared.contract import Scope
from twincast_shared.contract.events import Token

MIN_SECRET_BYTES = 32
MAX_TOKEN_CHARS = 2_048
Role = Literal["guest", "owner"]


class TokenError(ValueError):
    """A token that cannot be used; the message says why, and never echoes the secret."""


class JoinClaims(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    twin: Token
    scope: Scope
    role: Role = "guest"
    guest: Token | None = None
    exp: int = Field(gt=0)
    nonce: Token


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, *, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a token secret needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def issue(
        self,
        *,
        twin: str,
        scope: Scope,
        ttl_s: float,
        role: Role = "guest",
        guest: str | None = None,
        now: float | None = None,
    ) -> str:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        claims = JoinClaims(
            twin=twin,
            scope=scope,
            role=role,
            guest=guest,
            exp=int((now if now is not None else time.time()) + ttl_s),
            nonce=secrets.token_hex(8),
        )
        body = _b64(claims.model_dump_json(exclude_none=True).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, *, now: float | None = None) -> JoinClaims:
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise TokenError("malformed token")
        body, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise TokenError("token signature does not match")
        try:
            claims = JoinClaims.model_validate(json.loads(_unb64(body)))
        except (binascii.Error, ValueError, ValidationError) as error:
            raise TokenError("malformed token claims") from error
        if claims.exp <= (now if now is not None else time.time()):
            raise TokenError("token expired")
        return claims

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())


def load_or_create_secret(path: Path) -> bytes:
    """The secret kept in the state directory, so links outlive a restart of `twincast up`."""
    if path.exists():
        secret = bytes.fromhex(path.read_text().strip())
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"{path}: a token secret needs at least {MIN_SECRET_BYTES} bytes")
        return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(MIN_SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex())
    return secret
