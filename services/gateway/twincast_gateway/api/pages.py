"""The gateway's HTML pages: templates from the package, filled with the twin's names."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, Final

from aiohttp import web

from twincast_gateway.api.tokens import TokenError, TokenSigner
from twincast_gateway.settings import IceServer
from twincast_shared.store import StateStore
from twincast_shared.twins import get_profile

STATIC_KINDS: Final = {
    "common.js": "text/javascript",
    "guest.js": "text/javascript",
    "guest.css": "text/css",
    "console.js": "text/javascript",
    "console.css": "text/css",
}


def static_text(name: str) -> str:
    return resources.files("twincast_gateway").joinpath("static", name).read_text()


async def page_fields(store: StateStore, twin: str) -> dict[str, Any]:
    profile = await get_profile(store, twin)
    return {
        "name": html.escape(profile.display_name if profile else twin),
        "first": html.escape(profile.owner_first_name if profile else twin),
        "fictional": html.escape(profile.notice) if profile and profile.fictional else "",
    }


class GuestPages:
    """The landing page, the guest's join page and the pages' scripts and styles."""

    def __init__(
        self,
        *,
        store: StateStore,
        signer: Callable[[], TokenSigner],
        twin: str,
        ice_servers: Sequence[IceServer],
    ) -> None:
        self._store = store
        self._signer = signer
        self._twin = twin
        self._ice_servers = tuple(ice_servers)

    def routes(self) -> tuple[web.RouteDef, ...]:
        return (
            web.get("/", self.landing),
            web.get("/join/{token}", self.join_page),
            web.get("/static/{name}", self.static),
        )

    async def landing(self, _: web.Request) -> web.Response:
        fields = await page_fields(self._store, self._twin)
        body = static_text("landing.html").format(**fields)
        return web.Response(text=body, content_type="text/html")

    async def join_page(self, request: web.Request) -> web.Response:
        try:
            claims = self._signer().verify(request.match_info["token"])
        except TokenError as error:
            page = static_text("refused.html").format(reason=html.escape(str(error)))
            return web.Response(status=401, text=page, content_type="text/html")
        config = {
            "token": request.match_info["token"],
            "iceServers": [server.model_dump(exclude_none=True) for server in self._ice_servers],
            "twin": claims.twin,
        }
        fields = await page_fields(self._store, claims.twin)
        fields["config"] = html.escape(json.dumps(config), quote=True)
        return web.Response(
            text=static_text("guest.html").format(**fields), content_type="text/html"
        )

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_KINDS:
            raise web.HTTPNotFound()
        return web.Response(text=static_text(name), content_type=STATIC_KINDS[name])
