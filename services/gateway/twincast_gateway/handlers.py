"""gateway: the twin's front door. Serves the pages; WebRTC arrives with the live-avatar work."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Iterable

from aiohttp import web

from twincast_gateway.settings import GatewaySettings
from twincast_shared.contract import subjects as s
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.twins import get_profile

WORKERS = ("stt", "reasoning", "mood", "tts")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TwinCast · {name}</title>
<style>body{{font:16px system-ui;margin:3rem auto;max-width:40rem;color:#222}}
.notice{{background:#fff4d6;border:1px solid #e0b84d;padding:.75rem 1rem;border-radius:.5rem}}
code{{background:#f2f2f2;padding:.1rem .3rem}}</style></head>
<body><h1>{name}</h1>
<p class="notice"><strong>You are talking to an AI twin</strong> of {name}, not to {first} in
person. It answers only from {first}'s own writing and talks, and passes anything else on.</p>
<p>{fictional}</p>
<p>Services: <span id="status">checking…</span></p>
<p>Ask from a terminal: <code>uv run twincast ask "What did you find on the rooftops?"</code></p>
<script>
fetch("/api/status").then(r => r.json()).then(j => {{
  document.getElementById("status").textContent =
    Object.entries(j.services).map(([k, v]) => k + (v ? " ✓" : " ✗")).join("  ");
}});
</script></body></html>
"""


class GatewayService(BaseService):
    def __init__(self, ctx: ServiceContext[GatewaySettings]) -> None:
        self._ctx = ctx

    def routes(self) -> Iterable[web.RouteDef]:
        return (web.get("/", self.page), web.get("/api/status", self.status))

    async def page(self, _: web.Request) -> web.Response:
        twin = self._ctx.settings.twin
        profile = await get_profile(self._ctx.store, twin)
        name = html.escape(profile.display_name if profile else twin)
        first = html.escape(profile.owner_first_name if profile else twin)
        fictional = html.escape(profile.notice) if profile and profile.fictional else ""
        body = _PAGE.format(name=name, first=first, fictional=fictional)
        return web.Response(text=body, content_type="text/html")

    async def status(self, _: web.Request) -> web.Response:
        results = await asyncio.gather(*(self._ready(name) for name in WORKERS))
        return web.json_response({"services": dict(zip(WORKERS, results, strict=True))})

    async def _ready(self, service: str) -> bool:
        try:
            reply = await self._ctx.bus.broker.request(b"", s.HEALTH.of(service), timeout=1.0)
        except Exception:
            return False
        return bool(json.loads(reply.body).get("ready"))


SPEC = ServiceSpec(name="gateway", settings=GatewaySettings, create=GatewayService)
