from __future__ import annotations

from pathlib import Path

from pydantic import Field

from twincast_shared.settings import ServiceSettings


class TtsSettings(ServiceSettings):
    health_port: int = Field(default=8094, ge=0, le=65535)
    tts_voice_path: Path | None = Field(
        default=None, description="Piper .onnx voice; default: bundled en_US-joe-medium"
    )
