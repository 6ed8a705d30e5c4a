"""Settings shared by every process, read from the environment once and validated at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from twincast_shared.contract.subjects import is_valid_token

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "twincast"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWINCAST_", extra="ignore", frozen=True)

    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Valkey/Redis")
    log_level: LogLevel = Field(default="INFO", description="personal data is logged only at DEBUG")
    log_messages: bool = Field(
        default=False, description="log every bus message at INFO (costs ~0.2 ms a hop)"
    )
    twin: str = Field(default="juniper", description="the twin served by default")
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="data and logs; default ~/.local/state/twincast",
    )

    @field_validator("nats_url")
    @classmethod
    def _nats_scheme(cls, value: str) -> str:
        if not value.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ValueError("must be a nats://, tls://, ws:// or wss:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("twin")
    @classmethod
    def _twin_token(cls, value: str) -> str:
        if not is_valid_token(value):
            raise ValueError("must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        return value


class ServiceSettings(CommonSettings):
    health_host: str = Field(
        default="127.0.0.1", description="address of health, metrics and pages"
    )
    health_port: int = Field(
        default=8090,
        ge=0,
        le=65535,
        description="port of /healthz, /readyz, /metrics (gateway: pages)",
    )
