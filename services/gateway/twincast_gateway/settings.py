from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from twincast_shared.settings import ServiceSettings


class IceServer(BaseModel):
    """One STUN or TURN server, as a browser's RTCIceServer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: str | None = None

    @field_validator("urls")
    @classmethod
    def _schemes(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"{url!r} is not a stun:, turn: or turns: URL")
        return urls


class GatewaySettings(ServiceSettings):
    health_port: int = Field(default=8080, ge=0, le=65535)
    gateway_secret: SecretStr | None = Field(
        default=None,
        description="signs join links (hex, >= 32 bytes); if unset, kept in the state directory",
    )
    public_url: str | None = Field(default=None, description="base URL that links point at")
    ice_servers: list[IceServer] = Field(default_factory=list)
    ice_addresses: list[str] = Field(
        default_factory=list,
        description="host candidate addresses; empty: every interface, or loopback if none",
    )
    ice_mdns: bool = Field(default=False, description="resolve guests' .local ICE candidates")
    max_sessions: int = Field(default=32, ge=1, le=10_000)
    fps: int = Field(default=25, ge=5, le=60)
    floor_lease_ms: int = Field(
        default=5_000,
        ge=500,
        le=120_000,
        description="an owner console that stops renewing the floor loses it after this long",
    )

    @field_validator("ice_addresses")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        for value in values:
            ipaddress.ip_address(value)
        return values

    @property
    def secret_file(self) -> Path:
        return self.state_dir / "gateway.secret"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.health_host}:{self.health_port}").rstrip("/")
