"""The gateway's HTML pages: templates from the package, filled with the twin's names."""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

from twincast_shared.store import StateStore
from twincast_shared.twins import get_profile


def static_text(name: str) -> str:
    return resources.files("twincast_gateway").joinpath("static", name).read_text()


async def page_fields(store: StateStore, twin: str) -> dict[str, Any]:
    profile = await get_profile(store, twin)
    return {
        "name": html.escape(profile.display_name if profile else twin),
        "first": html.escape(profile.owner_first_name if profile else twin),
        "fictional": html.escape(profile.notice) if profile and profile.fictional else "",
    }
