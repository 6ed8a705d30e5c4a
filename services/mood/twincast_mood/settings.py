from __future__ import annotations

from pydantic import Field

from twincast_shared.settings import ServiceSettings


class MoodSettings(ServiceSettings):
    health_port: int = Field(default=8093, ge=0, le=65535)
    # Voice prosody on the guest's audio; off, mood reads the words alone.
    mood_prosody: bool = True
