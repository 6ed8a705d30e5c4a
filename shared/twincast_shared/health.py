"""HTTP liveness and readiness for k8s probes, Prometheus metrics, and any routes a service adds."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web

from twincast_shared.metrics import CONTENT_TYPE, Metrics


class HttpServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        service: str,
        is_ready: Callable[[], bool],
        routes: Iterable[web.RouteDef] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._service = service
        self._is_ready = is_ready
        self._metrics = metrics
        self.app = web.Application()
        self.app.add_routes(
            [web.get("/healthz", self._healthz), web.get("/readyz", self._readyz), *routes]
        )
        if metrics is not None:
            self.app.add_routes([web.get("/metrics", self._metrics_text)])
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"service": self._service, "alive": True})

    async def _metrics_text(self, _: web.Request) -> web.Response:
        assert self._metrics is not None
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _readyz(self, _: web.Request) -> web.Response:
        ready = self._is_ready()
        return web.json_response(
            {"service": self._service, "ready": ready}, status=200 if ready else 503
        )
