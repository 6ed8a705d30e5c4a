"""What the text formats share: decoding bytes, and the metadata a file states itself."""

from __future__ import annotations

import codecs
import re
from dataclasses import replace

from twincast_reasoning.corpus.passages import CorpusError, check_scope
from twincast_reasoning.corpus.sources import SourceError, SourceMeta
from twincast_reasoning.corpus.twin_folder import split_front_matter
from twincast_shared.contract.events import Scope


def decode_text(data: bytes, *, fallback: str | None = None) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise SourceError("corrupt", "broken UTF-16 text") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if fallback:
        try:
            return data.decode(fallback)
        except (UnicodeDecodeError, LookupError):
            pass
    raise SourceError("unreadable", "not UTF-8 text")


def front_matter(rel: str, text: str) -> tuple[dict[str, str], str]:
    try:
        meta, body = split_front_matter(rel, text.replace("\r\n", "\n"), required=False)
    except CorpusError as error:
        raise SourceError("invalid", str(error).removeprefix(f"{rel}: ")) from None
    return meta, body


def _scope(rel: str, value: str | None) -> Scope | None:
    if not value:
        return None
    try:
        return check_scope(rel, value.strip().lower())
    except CorpusError:
        raise SourceError(
            "invalid", f"scope {value!r} is not public, colleagues or private"
        ) from None


def with_found(rel: str, defaults: SourceMeta, found: dict[str, str]) -> SourceMeta:
    meta = defaults.over(
        title=found.get("title"), date=found.get("date"), origin=found.get("origin")
    )
    scope = _scope(rel, found.get("scope"))
    return replace(meta, scope=scope) if scope else meta


def normal_date(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value[:10] if re.match(r"\d{4}-\d{2}-\d{2}[T ]\d", value) else value
