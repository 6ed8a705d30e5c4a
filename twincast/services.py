"""The five services by name, imported only when asked for."""

from __future__ import annotations

import importlib
from typing import Any, Final

from twincast_shared.service import ServiceSpec

SERVICES: Final = ("stt", "reasoning", "mood", "tts", "gateway")


def spec(name: str) -> ServiceSpec[Any]:
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    found: ServiceSpec[Any] = importlib.import_module(f"twincast_{name}").SPEC
    return found
