"""`twincast twin face NAME PHOTO`: give a twin its face, from a photo of its owner."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import click

from twincast.cli_twin import valkey_url
from twincast_shared.contract.subjects import is_valid_token


@click.command("face")
@click.argument("name")
@click.argument("photo", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--redis-url", help="the Valkey/Redis holding twins (default: the running stack's)")
@click.option("--state-dir", type=click.Path(path_type=Path), help="twincast's state dir")
def face(name: str, photo: Path, redis_url: str | None, state_dir: Path | None) -> None:
    """Find the face in PHOTO once (landmarks), and make it twin NAME's avatar."""
    from twincast_gateway import PortraitError, create_portrait, put_portrait
    from twincast_shared.store import StateStore
    from twincast_shared.twins import get_profile

    if not is_valid_token(name):
        raise click.UsageError("NAME must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            portrait = create_portrait(photo, Path(tmp) / "portrait.png")
    except PortraitError as error:
        raise click.ClickException(str(error)) from None

    async def store_it(url: str) -> bool:
        store = StateStore.from_url(url)
        try:
            if await get_profile(store, name) is None:
                return False
            await put_portrait(store, name, portrait)
            return True
        finally:
            await store.close()

    with valkey_url(redis_url, state_dir) as url:
        if not asyncio.run(store_it(url)):
            raise click.ClickException(f"no twin {name!r}: create it first (twincast twin create)")
    g = portrait.geometry
    click.echo(f"{name} has a face: {g.width}x{g.height} portrait, mouth and eyes found")
