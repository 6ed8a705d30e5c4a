"""What a corpus file gives: its sources, their metadata, and why a file is skipped.

Knows nothing of file formats, the manifest or the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from twincast_reasoning.corpus.passages import CorpusError, Passage, SkippedFile
from twincast_shared.contract.events import Scope

SkipReason = Literal["unsupported", "too large", "empty", "corrupt", "invalid", "unreadable"]


class SourceError(CorpusError):
    """Why a file (or one post of an export) cannot be indexed: a reason kind and a detail."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: SkipReason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SourceMeta:
    title: str | None = None
    date: str | None = None
    origin: str | None = None
    scope: Scope = "private"

    def over(
        self, *, title: str | None = None, date: str | None = None, origin: str | None = None
    ) -> SourceMeta:
        """These defaults overridden by whatever the file itself says (None or "": nothing)."""
        return SourceMeta(
            title=title or self.title,
            date=date or self.date,
            origin=origin or self.origin,
            scope=self.scope,
        )


@dataclass(frozen=True, slots=True)
class ParsedSource:
    source_id: str
    title: str
    date: str | None
    origin: str | None
    scope: Scope
    passages: list[Passage]


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """One file's sources (one, or one per post of an export) and the posts it had to skip."""

    rel: str
    sources: list[ParsedSource]
    skipped: list[SkippedFile] = field(default_factory=list)
