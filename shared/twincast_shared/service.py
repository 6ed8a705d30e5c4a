"""Running one service: settings → broker, store, HTTP health → engine and handlers → serve."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider

from twincast_shared.bus import Bus, ensure_streams, make_broker
from twincast_shared.contract import subjects as s
from twincast_shared.health import HttpServer
from twincast_shared.heap import settle
from twincast_shared.logging import setup_logging
from twincast_shared.metrics import Metrics
from twincast_shared.settings import ServiceSettings
from twincast_shared.store import StateStore
from twincast_shared.telemetry import make_tracer_provider

S = TypeVar("S", bound=ServiceSettings)


class Service(Protocol):
    async def start(self) -> None:
        """Load models and anything slow; the service is ready when this returns."""

    async def close(self) -> None:
        """Stop owned tasks and release resources."""

    def routes(self) -> Iterable[web.RouteDef]:
        """Extra HTTP routes next to /healthz and /readyz."""


class BaseService:
    """No extra routes, nothing to load, nothing to close: override what a service needs."""

    def routes(self) -> Iterable[web.RouteDef]:
        return ()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class ServiceContext(Generic[S]):
    name: str
    settings: S
    bus: Bus
    store: StateStore
    tracer_provider: TracerProvider
    log: logging.Logger
    metrics: Metrics


@dataclass(frozen=True)
class ServiceSpec(Generic[S]):
    name: str
    settings: type[S]
    create: Callable[[ServiceContext[S]], Service]


@dataclass
class RunningService:
    name: str
    service: Service
    http: HttpServer
    ready: bool = False
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def serve(
    spec: ServiceSpec[S],
    settings: S,
    *,
    tracer_provider: TracerProvider | None = None,
) -> AsyncIterator[RunningService]:
    """Run a service until the block exits; closes everything it opened, in reverse order."""
    provider = tracer_provider or make_tracer_provider(spec.name)
    log = logging.getLogger(f"twincast.{spec.name}")
    metrics = Metrics(spec.name)
    broker = make_broker(settings, service=spec.name, tracer_provider=provider, metrics=metrics)
    bus = Bus(broker, service=spec.name, metrics=metrics)
    store = StateStore.from_url(settings.redis_url)
    ctx = ServiceContext(spec.name, settings, bus, store, provider, log, metrics)
    service = spec.create(ctx)
    running: RunningService | None = None

    @broker.subscriber(s.HEALTH.of(spec.name), queue=spec.name)
    async def health() -> dict[str, object]:
        return {"service": spec.name, "ready": running is not None and running.ready}

    http = HttpServer(
        host=settings.health_host,
        port=settings.health_port,
        service=spec.name,
        is_ready=lambda: running is not None and running.ready,
        routes=service.routes(),
        metrics=metrics,
    )
    running = RunningService(spec.name, service, http)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_shutdown_provider, provider, tracer_provider is None)
        stack.push_async_callback(store.close)
        await http.start()
        stack.push_async_callback(http.close)
        await store.ping()
        await ensure_streams(settings.nats_url)
        await service.start()
        stack.push_async_callback(service.close)
        await broker.start()
        stack.push_async_callback(broker.stop)
        settle()
        running.ready = True
        log.info("%s ready (health %s)", spec.name, http.url)
        try:
            yield running
        finally:
            running.ready = False


async def _shutdown_provider(provider: TracerProvider, owned: bool) -> None:
    if owned:
        provider.shutdown()


def run_forever(spec: ServiceSpec[S], settings: S) -> None:
    """Entry point of `twincast run <service>`: serve until SIGINT or SIGTERM."""
    setup_logging(settings.log_level, service=spec.name)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with serve(spec, settings):
            await stop.wait()

    asyncio.run(main())
    # Everything is closed and flushed by now; native libraries' teardown at interpreter exit
    # takes 1-4 s and holds up rolling restarts, so skip it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
