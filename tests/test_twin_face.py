"""A twin gets its face from a photo (landmarks found once), and a live session shows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tests.conftest import Stack, run_twincast
from tests.test_gateway_rtc import gateway
from twincast_gateway import get_portrait
from twincast_shared.store import StateStore, key
from twincast_shared.twins import TwinProfile
from twincast_testkit.rtc_client import TwinCall


def astronaut() -> np.ndarray:
    return np.asarray(data.astronaut(), dtype=np.uint8)  # type: ignore[no-untyped-call]


@pytest.fixture
async def astro(store: StateStore) -> str:
    profile = TwinProfile(
        id="astro", display_name="Test Astronaut", owner_first_name="Astro", greeting="Hi"
    )
    await store.put(key("twin", "astro"), profile)
    return "astro"


async def test_photo_becomes_the_face_of_a_live_session(
    stack: Stack, store: StateStore, astro: str, tmp_path: Path
) -> None:
    photo = tmp_path / "owner.jpg"
    Image.fromarray(astronaut()).save(photo)
    code, out, err = await run_twincast(
        "twin", "face", astro, str(photo), "--redis-url", stack.settings.redis_url
    )
    assert code == 0, err
    assert "has a face" in out
    portrait = await get_portrait(store, astro)
    assert portrait is not None
    mouth_y = float(np.mean([y for _, y in portrait.geometry.lips_outer_upper]))
    assert 0.2 * portrait.height < mouth_y < 0.5 * portrait.height

    url, service = gateway(stack)
    token = service.signer.issue(twin=astro, scope="public", ttl_s=60)
    async with TwinCall(base_url=url, token=token) as call:
        await call.connected()
        assert len(call.received.frames) >= 1


async def test_bad_photos_and_unknown_twins_get_clear_errors(
    stack: Stack, astro: str, tmp_path: Path
) -> None:
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is not a picture")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((400, 400, 3), 200, dtype=np.uint8)).save(blank)
    face = tmp_path / "owner.png"
    Image.fromarray(astronaut()).save(face)
    redis = ("--redis-url", stack.settings.redis_url)
    for photo, twin, says in (
        (not_an_image, astro, "corrupt"),
        (blank, astro, "face"),
        (tmp_path / "missing.png", astro, "no such image"),
        (face, "nobody", "create it first"),
    ):
        code, _, err = await run_twincast("twin", "face", twin, str(photo), *redis)
        assert code == 1, (photo, err)
        assert says in err, err
