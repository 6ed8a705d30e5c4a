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
    stt_max_utterance_s: float = Field(default=25.0, gt=1, le=30)
    stt_vad_threshold: float = Field(default=0.5, gt=0, lt=1)
    stt_silence_ms: float = Field(
        default=320.0, ge=64, le=3000, description="silence that ends a turn (see README)"
    )
    stt_hesitation_ms: float = Field(
        default=800.0, ge=64, le=5000, description="silence that ends a turn left unfinished"
    )
    stt_partial_every_ms: float = Field(default=250.0, ge=100, le=5000)
    stt_final_pad_s: float | None = Field(
        default=3.0, ge=0, le=30, description="Whisper window = utterance + this; None: 30 s"
    )
    stt_partial_pad_s: float = Field(default=3.0, ge=0, le=30)
    stt_flood_burst_s: float = Field(
        default=20.0, gt=0, description="audio a session may send ahead of real time"
    )
