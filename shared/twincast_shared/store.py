"""Typed state on Redis/Valkey: pydantic models in, pydantic models out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis

from twincast_shared.contract.subjects import is_valid_token

M = TypeVar("M", bound=BaseModel)

PREFIX = "twincast"


def key(*parts: str) -> str:
    """`twincast:<part>:<part>…`; every variable part must be a token."""
    for part in parts:
        if not is_valid_token(part):
            raise ValueError(f"not a valid key part: {part!r}")
    return ":".join((PREFIX, *parts))


class StateStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @classmethod
    def from_url(cls, url: str) -> StateStore:
        return cls(Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30))

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def get(self, name: str, model: type[M]) -> M | None:
        raw = await self.redis.get(name)
        return None if raw is None else model.model_validate_json(raw)

    async def put(self, name: str, value: BaseModel, *, ttl_s: int | None = None) -> None:
        await self.redis.set(name, value.model_dump_json(), ex=ttl_s)

    async def delete(self, *names: str) -> int:
        return int(await self.redis.delete(*names)) if names else 0

    async def put_list(self, name: str, values: Sequence[BaseModel]) -> None:
        """Replace a whole list atomically."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(name)
            if values:
                pipe.rpush(name, *(v.model_dump_json() for v in values))
            await pipe.execute()

    async def get_list(self, name: str, model: type[M]) -> list[M]:
        return [model.model_validate_json(raw) for raw in await self.redis.lrange(name, 0, -1)]

    async def append(
        self, name: str, values: Iterable[BaseModel], *, ttl_s: int | None = None
    ) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(name, *(v.model_dump_json() for v in values))
            if ttl_s is not None:
                pipe.expire(name, ttl_s)
            await pipe.execute()

    async def incr(self, name: str, *, ttl_s: int | None = None) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            if ttl_s is not None:
                pipe.expire(name, ttl_s)
            value, *_ = await pipe.execute()
        return int(value)
