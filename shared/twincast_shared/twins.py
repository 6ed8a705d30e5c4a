"""A twin's public profile, shared by every service through the state store."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from twincast_shared.contract.events import Token
from twincast_shared.store import StateStore, key


class TwinProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Token
    display_name: str
    owner_first_name: str
    greeting: str
    notice: str = ""
    fictional: bool = False


async def get_profile(store: StateStore, twin_id: str) -> TwinProfile | None:
    return await store.get(key("twin", twin_id), TwinProfile)
