"""A passage of the owner's words, as every part of reasoning sees it, and the corpus's errors.

Knows nothing of files or formats.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from twincast_shared.contract import InputError
from twincast_shared.contract.events import Scope


class Passage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source_id: str
    title: str
    date: str | None
    origin: str | None
    scope: Scope
    section: str | None
    paragraph: int
    text: str
    location: str | None = None


def heading(passage: Passage) -> str:
    """Where the passage stands: its source's title, and its section when that says more."""
    section = passage.section
    if section and section.strip().lower() != passage.title.strip().lower():
        return f"{passage.title}, {section}"
    return passage.title


# Names what `embedding_text` makes; a stored vector made another way is not reused.
EMBEDDING_FORMAT = "heading. text/1"


def embedding_text(passage: Passage) -> str:
    """What a passage's vector is made of: the text under its heading, so that a paragraph
    that never names its topic ("Keep a field notebook…" under "Advice for students") is
    still found by it."""
    return f"{heading(passage)}. {passage.text}"


class CorpusError(InputError):
    pass


class SkippedFile(BaseModel):
    path: str
    reason: str


def check_scope(source_id: str, value: str) -> Scope:
    if value not in ("public", "colleagues", "private"):
        raise CorpusError(f"{source_id}: scope must be public, colleagues or private")
    return value  # type: ignore[return-value]
