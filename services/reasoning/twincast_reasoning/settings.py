from __future__ import annotations

from pydantic import Field

from twincast_shared.settings import ServiceSettings


class ReasoningSettings(ServiceSettings):
    health_port: int = Field(default=8092, ge=0, le=65535)
    reasoning_min_coverage: float = Field(
        default=0.5, gt=0, le=1, description="share of the question's key terms a passage must hold"
    )
    reasoning_max_sentences: int = Field(default=2, ge=1, le=8)
