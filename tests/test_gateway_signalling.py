"""Signalling: WHEP play, WHIP publish, bad input, token rules, hang-up and shutdown cleanup."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Mapping

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from tests.conftest import Stack
from tests.test_gateway_rtc import gateway, read_wav, wait_for
from twincast_gateway import TokenError, TokenSigner
from twincast_shared.store import StateStore, key
from twincast_shared.twins import TwinProfile
from twincast_testkit.rtc_client import Microphone, TwinCall, post_sdp

SECRET = b"k" * 32


def test_tokens_are_signed_scoped_and_expire() -> None:
    signer = TokenSigner(secret=SECRET)
    token = signer.issue(twin="juniper", scope="colleagues", ttl_s=60, guest="ada")
    claims = signer.verify(token)
    assert (claims.twin, claims.scope, claims.guest) == ("juniper", "colleagues", "ada")
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token, now=time.time() + 61)
    with pytest.raises(TokenError, match="signature"):
        TokenSigner(secret=b"x" * 32).verify(token)
    body, signature = token.split(".")
    with pytest.raises(TokenError, match="signature"):
        signer.verify(body[:-1] + ("A" if body[-1] != "A" else "B") + "." + signature)
    for junk in ("", "abc", "a.b.c", "x" * 5000):
        with pytest.raises(TokenError, match=r"malformed|signature"):
            signer.verify(junk)
    with pytest.raises(ValueError, match="32 bytes"):
        TokenSigner(secret=b"short")


async def _play(url: str, token: str) -> tuple[int, Mapping[str, str], str, RTCPeerConnection]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    async with aiohttp.ClientSession() as http:
        status, headers, answer = await post_sdp(http, f"{url}/whep", pc, token=token)
    return status, headers, answer, pc


async def _next(track: MediaStreamTrack, timeout_s: float = 10) -> object:
    return await asyncio.wait_for(track.recv(), timeout_s)


async def test_whep_plays_the_avatar_and_whip_feeds_the_same_session(stack: Stack) -> None:
    url, service = gateway(stack)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    status, headers, answer, viewer = await _play(url, token)
    assert status == 201, answer
    assert headers["Content-Type"].startswith("application/sdp")
    location, session_id = headers["Location"], headers["X-TwinCast-Session"]
    tracks: list[MediaStreamTrack] = []
    viewer.on("track", tracks.append)
    await viewer.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    assert await wait_for(lambda: len(tracks) == 2, timeout_s=10)
    video = next(t for t in tracks if t.kind == "video")
    first = await _next(video)
    assert getattr(first, "width", 0) > 0

    # A WHIP publisher (a virtual world's microphone) speaks into the session the player watches.
    mic = Microphone()
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher.addTransceiver(mic, direction="sendonly")
    async with aiohttp.ClientSession() as http:
        status, headers, body = await post_sdp(
            http, f"{url}/whip?session={session_id}", publisher, token=token
        )
    assert status == 201, body
    whip_location = headers["Location"]
    await publisher.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    pcm, rate = read_wav("arctic_a0009.wav")
    await mic.say(pcm, rate)
    audio = next(t for t in tracks if t.kind == "audio")
    loud = 0
    deadline = time.monotonic() + 30
    while loud < 1000 and time.monotonic() < deadline:
        frame = await _next(audio)
        samples = frame.to_ndarray()  # type: ignore[attr-defined]
        loud = max(loud, int(abs(samples).max()))
    assert loud > 1000, "the twin never answered the WHIP publisher on the WHEP stream"

    async with aiohttp.ClientSession() as http:
        async with http.patch(url + location, data="a=end-of-candidates") as r:
            assert r.status == 405
        for resource in (whip_location, location):
            async with http.delete(url + resource) as r:
                assert r.status == 200
        async with http.delete(url + location) as r:
            assert r.status == 404
    await asyncio.gather(viewer.close(), publisher.close())
    assert session_id not in service.sessions


@pytest.mark.parametrize(
    ("headers", "body", "status", "says"),
    [
        ({"Content-Type": "application/sdp"}, "v=0", 401, "Bearer"),
        ({"Content-Type": "text/plain", "Authorization": "Bearer x"}, "v=0", 415, "sdp"),
        (
            {"Content-Type": "application/sdp", "Authorization": "Bearer a.b"},
            "v=0",
            401,
            "signature",
        ),
    ],
)
async def test_whep_refuses_bad_requests(
    stack: Stack, headers: dict[str, str], body: str, status: int, says: str
) -> None:
    url, _ = gateway(stack)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/whep", data=body, headers=headers) as r,
    ):
        assert r.status == status
        assert says in await r.text()


@pytest.mark.parametrize(
    ("sdp", "says"),
    [
        ("", "empty"),
        ("hello", "v=0"),
        ("v=0\r\nthis is not sdp\r\n", "no audio or video"),
        ("v=0\r\nm=audio port RTP/SAVPF 111\r\n", "not understood"),
        ("v=0\n" + "a=xxxxxxxx\n" * 6000, "64 KiB"),
        ("v=0\r\n" + "a=x\r\n" * 20000, "80 KiB"),
    ],
)
async def test_bad_sdp_is_refused_and_leaves_nothing_behind(
    stack: Stack, sdp: str, says: str
) -> None:
    url, service = gateway(stack)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    before = set(service.sessions)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/sessions", json={"token": token, "sdp": sdp}) as r,
    ):
        assert r.status in (400, 413)
        assert says in await r.text()
    assert set(service.sessions) == before


async def test_unknown_twin_and_session_are_404(stack: Stack) -> None:
    url, service = gateway(stack)
    nobody = service.signer.issue(twin="nobody", scope="public", ttl_s=60)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/sessions", json={"token": nobody, "sdp": "v=0"}) as r:
            assert r.status == 404
            assert "nobody" in (await r.json())["error"]
        async with http.delete(f"{url}/api/sessions/abc/peers/def") as r:
            assert r.status == 404
        async with http.post(
            f"{url}/whip?session=unknown",
            data="v=0",
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status == 404


async def test_barge_in_silences_the_twin_at_the_guest(stack: Stack) -> None:
    url, service = gateway(stack)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    question, rate = read_wav("arctic_a0009.wav")
    async with TwinCall(base_url=url, token=token) as call:
        await call.connected()
        call.ask_text("Tell me everything about the rooftop survey and the bees.")
        assert await wait_for(lambda: call.received.sound, timeout_s=30), "the twin never spoke"
        talking_over = await call.mic.say(question, rate)
        _, interrupted = await call.wait_message(
            lambda m: m["type"] == "interrupted", after=talking_over[0], timeout_s=10
        )
        quiet = call.received.first_silence_after(talking_over[0], frames=10)
        session = service.sessions[call.session_id]
        assert session.stats.flushed_at
    assert interrupted
    assert quiet is not None, "the twin kept talking over the guest"
    assert quiet < talking_over[1], "the twin kept talking over the guest"


async def test_hang_up_and_shutdown_leave_no_peer_or_task(stack: Stack) -> None:
    url, service = gateway(stack)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    calls = [TwinCall(base_url=url, token=token) for _ in range(2)]
    for call in calls:
        await call.__aenter__()
        await call.connected()
    sessions = [service.sessions[call.session_id] for call in calls]
    await calls[0].close()
    assert calls[0].session_id not in service.sessions
    # Shutdown closes what is still live, even with the guest still connected.
    await service.close()
    assert not service.sessions
    for session in sessions:
        assert session.peers == 0
        assert len(session._tasks) == 0
    await calls[1].close()
    await asyncio.sleep(0.1)
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection)]
    assert not [pc for pc in alive if pc.connectionState != "closed"]
    tasks = [t for t in asyncio.all_tasks() if "session" in t.get_name()]
    assert not tasks, tasks


async def test_a_twin_without_a_face_is_a_clear_409(stack: Stack, store: StateStore) -> None:
    url, service = gateway(stack)
    profile = TwinProfile(
        id="faceless", display_name="Faceless Test", owner_first_name="Faceless", greeting="Hi"
    )
    await store.put(key("twin", "faceless"), profile)
    token = service.signer.issue(twin="faceless", scope="public", ttl_s=60)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/sessions", json={"token": token, "sdp": "v=0"}) as r,
    ):
        assert r.status == 409
        assert "twin face faceless" in (await r.json())["error"]
    assert not service.sessions


async def test_pages_render(stack: Stack) -> None:
    url, service = gateway(stack)
    token = service.signer.issue(twin="juniper", scope="public", ttl_s=60)
    async with aiohttp.ClientSession() as http:
        for path in ("/", f"/join/{token}", "/static/guest.js", "/static/guest.css"):
            async with http.get(url + path) as r:
                assert r.status == 200, path
        async with http.get(url + "/") as r:
            assert "AI twin" in await r.text()
        async with http.get(url + "/static/../handlers.py") as r:
            assert r.status == 404
