"""`sources.toml`: `[[source]]` rules that give the files under a path pattern their metadata.

Knows nothing of file formats: a rule's metadata is a default that a file's own overrides.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime
from pathlib import Path
from typing import Final

from twincast_reasoning.corpus.passages import CorpusError, check_scope
from twincast_reasoning.corpus.sources import SourceMeta

MANIFEST: Final = "sources.toml"


@dataclass(frozen=True, slots=True)
class ManifestRule:
    pattern: str
    meta: SourceMeta
    explicit: tuple[tuple[str, str], ...]
    regex: re.Pattern[str]

    def matches(self, rel: str) -> bool:
        return bool(self.regex.fullmatch(rel))


def glob_regex(pattern: str) -> re.Pattern[str]:
    """`*` and `?` stay inside one folder, `**` spans folders; a folder matches what is under it."""
    pattern = pattern.strip().removeprefix("./").rstrip("/")
    pattern = "" if pattern == "." else pattern
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    return re.compile(f"{body}(?:/.*)?" if body else ".*")


@dataclass(frozen=True, slots=True)
class Manifest:
    rules: tuple[ManifestRule, ...] = ()

    def rule_for(self, rel: str) -> ManifestRule | None:
        return next((rule for rule in self.rules if rule.matches(rel)), None)

    def meta_for(self, rel: str) -> SourceMeta:
        rule = self.rule_for(rel)
        return SourceMeta() if rule is None else rule.meta


_RULE_KEYS: Final = frozenset({"path", "title", "date", "origin", "scope"})


def _text_value(where: str, name: str, value: object) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, Date):
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise CorpusError(f"{where}: {name} must be a non-empty string")


def parse_manifest(text: str, *, where: str = MANIFEST) -> Manifest:
    """`[[source]]` tables with `path` (a glob) and any of title, date, origin, scope."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CorpusError(f"{where}: not valid TOML: {error}") from None
    extra = set(data) - {"source"}
    if extra:
        raise CorpusError(f"{where}: unknown table(s) {sorted(extra)}; expected [[source]]")
    entries = data.get("source", [])
    if not isinstance(entries, list):
        raise CorpusError(f"{where}: write rules as [[source]] tables")
    rules = []
    for n, entry in enumerate(entries, 1):
        at = f"{where}: [[source]] #{n}"
        if not isinstance(entry, dict):
            raise CorpusError(f"{at}: not a table")
        unknown = set(entry) - _RULE_KEYS
        if unknown:
            raise CorpusError(f"{at}: unknown key(s) {sorted(unknown)}")
        if "path" not in entry:
            raise CorpusError(f"{at}: no path pattern")
        values = {k: _text_value(at, k, v) for k, v in entry.items()}
        pattern = values.pop("path")
        scope = check_scope(at, values.pop("scope", "private"))
        rules.append(
            ManifestRule(
                pattern=pattern,
                meta=SourceMeta(scope=scope, **values),
                explicit=tuple(sorted({**values, "scope": scope}.items())),
                regex=glob_regex(pattern),
            )
        )
    return Manifest(tuple(rules))


def load_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Manifest()
    except (OSError, UnicodeDecodeError) as error:
        raise CorpusError(f"{path}: unreadable: {error}") from None
    return parse_manifest(text, where=str(path))
