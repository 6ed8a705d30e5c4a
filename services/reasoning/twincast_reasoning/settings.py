from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from twincast_shared.settings import ServiceSettings


class ReasoningSettings(ServiceSettings):
    health_port: int = Field(default=8092, ge=0, le=65535)
    reasoning_min_coverage: float = Field(
        default=0.5, gt=0, le=1, description="share of the question's key terms a passage must hold"
    )
    reasoning_max_words: int = Field(
        default=60, ge=10, le=300, description="how long an extractive answer may be, in words"
    )
    reasoning_max_sentences: int = Field(default=6, ge=1, le=12)
    reasoning_min_similarity: float = Field(
        default=0.6, gt=0, le=1, description="or this cosine similarity with some of the key terms"
    )
    reasoning_composer: Literal["extractive", "openai", "llama"] = "extractive"
    reasoning_openai_base_url: str | None = Field(
        default=None, description="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1"
    )
    reasoning_openai_model: str = "llama3.2"
    reasoning_openai_api_key: SecretStr | None = None
    reasoning_llama_model_path: Path | None = None

    @model_validator(mode="after")
    def _composer_needs(self) -> ReasoningSettings:
        if self.reasoning_composer == "openai" and not self.reasoning_openai_base_url:
            raise ValueError("the openai composer needs TWINCAST_REASONING_OPENAI_BASE_URL")
        return self
