"""`twincast twin`: create a twin from a folder and keep its index in step with the folder.

Where the index lives: `--redis-url`; else the Valkey of the stack `twincast up` is running
(its run file in the state dir); else TWINCAST_REDIS_URL when set; else a private Valkey
started for this command on the state dir's own data (`<state dir>/valkey`, as `twincast up`
uses it), so the next `twincast up` serves what was ingested.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from pydantic import ValidationError

from twincast.runtime import StackError, read_run_file, valkey_server
from twincast_shared.settings import CommonSettings

if TYPE_CHECKING:
    import numpy as np

SCOPES = ("public", "colleagues", "private")


def _settings(**overrides: Any) -> CommonSettings:
    try:
        return CommonSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        raise click.UsageError(f"invalid settings:\n{error}") from None


@contextlib.contextmanager
def private_valkey(state_dir: Path) -> Iterator[str]:
    """Valkey on the state dir's data for one command; stopped (and flushed to disk) after."""
    data = state_dir / "valkey"
    data.mkdir(parents=True, exist_ok=True)
    with (data / ".twin-cli.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            click.echo("waiting for another twincast command on the same data …", err=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _serve_valkey(state_dir, data)


def _serve_valkey(state_dir: Path, data: Path) -> Iterator[str]:
    log_path = state_dir / "logs" / "valkey-twin-cli.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with valkey_server(data, durable=True, log=log_path, stop_timeout_s=30) as url:
        yield url


@contextlib.contextmanager
def valkey_url(redis_url: str | None, state_dir: Path | None) -> Iterator[str]:
    if redis_url:
        yield _settings(redis_url=redis_url).redis_url
        return
    settings = _settings(state_dir=state_dir)
    running = read_run_file(settings.state_dir)
    if running is not None:
        yield running.redis
        return
    if "redis_url" in settings.model_fields_set:
        yield settings.redis_url
        return
    click.echo(f"no running stack; using the twin data in {settings.state_dir}", err=True)
    try:
        with private_valkey(settings.state_dir) as url:
            yield url
    except StackError as error:
        raise click.ClickException(str(error)) from None


class LazyEmbedder:
    """Loads the model on first use: a run where nothing changed never pays for it."""

    def __init__(self) -> None:
        self._embedder: Any = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._embedder is None:
            from twincast_reasoning import Embedder

            self._embedder = Embedder(threads=max(1, min(4, os.cpu_count() or 1)))
        vectors: np.ndarray = self._embedder.embed(texts)
        return vectors


class ProgressBar:
    """`[#####-----] 12/40 talks/a.vtt` on a terminal's stderr; a line per tenth elsewhere."""

    def __init__(self, stream: TextIO | None = None, width: int = 28) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._width = width
        self._tenth = -1
        self._shown = False

    def __call__(self, done: int, total: int, path: str) -> None:
        filled = self._width * done // max(total, 1)
        bar = f"[{'#' * filled}{'-' * (self._width - filled)}] {done}/{total}"
        if self._tty:
            name = path if len(path) <= 40 else "…" + path[-39:]
            self._stream.write(f"\r\x1b[2K{bar} {name}")
            self._shown = True
            if done == total:
                self._stream.write("\n")
                self._shown = False
        else:
            tenth = 10 * done // max(total, 1)
            if tenth != self._tenth:
                self._tenth = tenth
                self._stream.write(f"{bar}\n")
        self._stream.flush()

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._shown = False


def _report(result: Any, *, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        click.echo(json.dumps({**(extra or {}), **result.model_dump()}, indent=2))
        return
    rows: list[tuple[str, str, str]] = []
    rows += [("added", path, "") for path in result.added]
    rows += [("updated", path, "") for path in result.updated]
    rows += [("removed", path, "") for path in result.removed]
    rows += [("skipped", s.path, f"{s.reason}: {s.detail}" if s.detail else s.reason)
             for s in result.skipped]  # fmt: skip
    if rows:
        width = max(len(path) for _, path, _ in rows)
        for status, path, why in rows:
            click.echo(f"  {status:<8} {path:<{width}}  {why}".rstrip())
    click.echo(
        f"twin {result.twin_id}: {len(result.added)} added, {len(result.updated)} updated, "
        f"{len(result.removed)} removed, {len(result.unchanged)} unchanged, "
        f"{len(result.skipped)} skipped; {result.passages} passages indexed "
        f"({result.embedded} embedded), {result.sources} sources in the index "
        f"(version {result.version})"
    )


def _run_ingest(
    url: str,
    twin_id: str,
    *,
    root: Path,
    paths: list[Path] | None,
    force: bool,
    profile: Any = None,
    replace: bool = False,
) -> Any:
    from twincast_reasoning import (
        CorpusError,
        TwinExists,
        UnknownTwin,
        create_twin,
        ingest_twin,
    )
    from twincast_shared.store import StateStore

    async def go() -> Any:
        store = StateStore.from_url(url)
        bar = ProgressBar()
        try:
            if profile is not None:
                await create_twin(store, profile, root, replace=replace)
            embedder = LazyEmbedder()
            return await ingest_twin(
                store, embedder, twin_id, root, paths, progress=bar, force=force
            )
        except TwinExists:
            raise click.ClickException(
                f"twin {twin_id!r} exists already; `twincast twin ingest {twin_id}` "
                "brings it up to date, --replace rebuilds it from this folder"
            ) from None
        except UnknownTwin:
            raise click.ClickException(
                f"no twin {twin_id!r}; create it with `twincast twin create {twin_id} --from DIR`"
            ) from None
        except CorpusError as error:
            raise click.ClickException(str(error)) from None
        finally:
            bar.close()
            await store.close()

    return asyncio.run(go())


def _stored_root(url: str, twin_id: str) -> Path | None:
    """The twin's corpus folder on record; a ClickException if there is no such twin."""
    from twincast_reasoning import get_corpus_root
    from twincast_shared.store import StateStore
    from twincast_shared.twins import get_profile

    async def go() -> Path | None:
        store = StateStore.from_url(url)
        try:
            if await get_profile(store, twin_id) is None:
                raise click.ClickException(
                    f"no twin {twin_id!r}; create it with `twincast twin create {twin_id} "
                    "--from DIR`"
                )
            return await get_corpus_root(store, twin_id)
        finally:
            await store.close()

    return asyncio.run(go())


def _check_id(name: str) -> str:
    from twincast_shared.contract.subjects import is_valid_token

    if not is_valid_token(name):
        raise click.UsageError(f"twin name {name!r}: use 1-64 of A-Z, a-z, 0-9, '_' or '-'")
    return name


@click.group()
def twin() -> None:
    """Create twins from the owner's material and keep them in step with it.

    Reads .md .txt .html .pdf .docx .srt .vtt and JSON post exports; a sources.toml in the
    corpus folder sets scope/origin/date per path pattern; anything not marked is private.
    """


_store_options = [
    click.option(
        "--redis-url",
        help="the Valkey/Redis holding twins (default: the running stack's, else the state "
        "dir's own data through a Valkey started for this command)",
    ),
    click.option("--state-dir", type=click.Path(path_type=Path), help="twincast's state dir"),
    click.option("--force", is_flag=True, help="re-index unchanged files too"),
    click.option("--json", "as_json", is_flag=True, help="print the report as JSON"),
]


def _with_store_options(f: Any) -> Any:
    for option in reversed(_store_options):
        f = option(f)
    return f


@twin.command()
@click.argument("name")
@click.option(
    "--from",
    "source_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="the twin's folder: twin.toml (optional) and corpus/ (or the corpus itself)",
)
@click.option("--display-name", help="the owner's name as guests see it")
@click.option("--owner-first-name", help="how the twin names its owner")
@click.option("--greeting", help="the twin's first words; must say it is an AI twin")
@click.option("--replace", is_flag=True, help="rebuild a twin that exists already")
@_with_store_options
def create(
    name: str,
    source_dir: Path,
    display_name: str | None,
    owner_first_name: str | None,
    greeting: str | None,
    replace: bool,
    redis_url: str | None,
    state_dir: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create twin NAME from a folder and index all of its corpus."""
    from twincast_reasoning import CorpusError, load_profile
    from twincast_shared.twins import TwinProfile

    _check_id(name)
    source_dir = source_dir.resolve()
    fields: dict[str, Any] = {}
    if (source_dir / "twin.toml").is_file():
        try:
            fields = load_profile(source_dir).model_dump()
        except CorpusError as error:
            raise click.ClickException(str(error)) from None
        if fields["id"] != name:
            click.echo(f"twin.toml names the twin {fields['id']!r}; using {name!r}", err=True)
    shown = display_name or fields.get("display_name") or name.replace("-", " ").title()
    first = owner_first_name or fields.get("owner_first_name") or shown.split()[0]
    fields.update(
        id=name,
        display_name=shown,
        owner_first_name=first,
        greeting=greeting
        or fields.get("greeting")
        or (
            f"Hi, I'm {shown}'s AI twin. I answer from {first}'s own writing and talks, "
            f"and I'll pass anything else on to {first}."
        ),
    )
    if "ai twin" not in fields["greeting"].lower():
        raise click.UsageError("the greeting must tell guests they are talking to an AI twin")
    try:
        profile = TwinProfile.model_validate(fields)
    except ValidationError as error:
        raise click.UsageError(f"invalid twin profile:\n{error}") from None
    root = source_dir / "corpus" if (source_dir / "corpus").is_dir() else source_dir
    with valkey_url(redis_url, state_dir) as url:
        result = _run_ingest(
            url, name, root=root, paths=None, force=force, profile=profile, replace=replace
        )
    _report(result, as_json=as_json, extra={"created": name})


@twin.command("ingest")
@click.argument("name")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="the corpus folder (remembered; default: the one the twin was created from)",
)
@_with_store_options
def ingest_command(
    name: str,
    paths: tuple[Path, ...],
    root: Path | None,
    redis_url: str | None,
    state_dir: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Bring twin NAME up to date with its corpus: all of it, or only PATHS (files or folders
    inside the corpus; a deleted file's path removes it from the index)."""
    _check_id(name)
    with valkey_url(redis_url, state_dir) as url:
        stored = _stored_root(url, name)
        corpus = root.resolve() if root else stored
        if corpus is None:
            raise click.UsageError(f"twin {name!r} has no corpus folder on record; pass --root")
        if not corpus.is_dir():
            raise click.ClickException(f"the corpus folder {corpus} is gone; pass --root")
        chosen = [Path.cwd() / p if not p.is_absolute() else p for p in paths] or None
        result = _run_ingest(url, name, root=corpus, paths=chosen, force=force)
    _report(result, as_json=as_json)
