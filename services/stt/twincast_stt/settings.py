from __future__ import annotations

from pathlib import Path

from pydantic import Field

from twincast_shared.settings import ServiceSettings


class SttSettings(ServiceSettings):
    health_port: int = Field(default=8091, ge=0, le=65535)
    stt_model_path: Path | None = Field(
        default=None, description="CTranslate2 whisper model dir; default: bundled tiny.en"
    )
    stt_cpu_threads: int = Field(default=2, ge=1, le=64)
    stt_beam_size: int = Field(default=1, ge=1, le=10)
    stt_max_utterance_s: float = Field(default=60.0, gt=0, le=600)
