from __future__ import annotations

from pathlib import Path

from pydantic import Field

from twincast_shared.settings import ServiceSettings


class TtsSettings(ServiceSettings):
    health_port: int = Field(default=8094, ge=0, le=65535)
    tts_voice_path: Path | None = Field(
        default=None, description="Piper .onnx voice; default: bundled en_US-joe-medium"
    )
    tts_threads: int = Field(
        default=0, ge=0, le=64, description="onnxruntime threads; 0: one per physical core"
    )
    tts_trim_leading_silence: bool = Field(
        default=True, description="cut Piper's leading silence from the first piece of a reply"
    )
