"""The owner takes over live: floor lock, takeover with their own voice, hand back, Say, shadow
mode and the audit, over real WebRTC, the real bus and real Valkey."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import uuid4

import aiohttp
import nats.aio.client
import pytest

from tests.conftest import Stack, run_twincast
from tests.test_gateway_rtc import gateway, read_wav, wait_for
from twincast.runtime import EXAMPLES
from twincast_gateway import GatewayService, mouth_box_for
from twincast_shared.contract import DraftDecided
from twincast_shared.contract import subjects as s
from twincast_shared.floor import Floor, FloorTaken, Holding, Shadow
from twincast_shared.store import StateStore
from twincast_testkit.console_client import ConsoleError, OwnerConsoleClient
from twincast_testkit.rtc_client import TwinCall
from twincast_testkit.turns import MOUTH_MOVING

# Floor lock, on its own


JSON = {"content-type": "application/json"}


async def test_floor_is_held_by_one_console_and_fences_grow(store: StateStore) -> None:
    floor = Floor(store, lease_ms=60_000)
    session = uuid4().hex
    first = await floor.take(session, "console-a")
    assert await floor.take(session, "console-a") == first, "taking again is idempotent"
    with pytest.raises(FloorTaken) as taken:
        await floor.take(session, "console-b")
    assert taken.value.holding == first
    assert await floor.renew(session, first)
    assert not await floor.release(session, Holding(holder="console-b", fence=first.fence))
    assert await floor.release(session, first)
    second = await floor.take(session, "console-b")
    assert second.fence > first.fence
    # The first console comes back with its old fence: it can neither renew nor release.
    assert not await floor.renew(session, first)
    assert not await floor.release(session, first)
    assert await floor.holder(session) == second


async def test_a_lease_that_is_not_renewed_runs_out(store: StateStore) -> None:
    floor = Floor(store, lease_ms=500)
    session = uuid4().hex
    held = await floor.take(session, "console-a")
    await asyncio.sleep(0.3)
    assert await floor.renew(session, held)
    await asyncio.sleep(0.3)
    assert await floor.holder(session) == held, "a renewed lease runs on"
    await asyncio.sleep(0.6)
    assert await floor.holder(session) is None
    assert not await floor.renew(session, held)
    assert (await floor.take(session, "console-b")).fence > held.fence


async def test_shadow_mode_is_per_session(store: StateStore) -> None:
    shadow = Shadow(store)
    one, two = uuid4().hex, uuid4().hex
    await shadow.set(one, True)
    assert await shadow.is_on(one)
    assert not await shadow.is_on(two)
    await shadow.set(one, False)
    assert not await shadow.is_on(one)


# Through the stack


def tokens(service: GatewayService) -> tuple[str, str]:
    guest = service.signer.issue(twin="juniper", scope="public", ttl_s=120, guest="ada")
    owner = service.signer.issue(twin="juniper", scope="private", ttl_s=120, role="owner")
    return guest, owner


@pytest.fixture
async def live(stack: Stack) -> AsyncIterator[tuple[TwinCall, OwnerConsoleClient, GatewayService]]:
    url, service = gateway(stack)
    guest_token, owner_token = tokens(service)
    box = mouth_box_for(EXAMPLES / "juniper")
    async with (
        TwinCall(base_url=url, token=guest_token, mouth_box=box) as call,
        OwnerConsoleClient(base_url=url, token=owner_token) as console,
    ):
        await call.connected()
        listed = await console.sessions()
        assert call.session_id in {x["session_id"] for x in listed}
        await console.open(call.session_id)
        await console.connected()
        yield call, console, service
    assert await wait_for(lambda: not service.sessions, timeout_s=10)


async def test_owner_takes_over_with_their_voice_and_hands_back(
    live: tuple[TwinCall, OwnerConsoleClient, GatewayService],
    stack: Stack,
) -> None:
    call, console, _ = live
    # The twin is mid-answer when the owner steps in: the answer stops.
    call.ask_text("What did you find on the rooftops?")
    await wait_for(lambda: call.received.sound, timeout_s=30)
    clicked = time.monotonic()
    got = await console.take_over()
    assert got["holder"] == console.peer_id
    await call.wait_message(
        lambda m: m["type"] == "floor" and m["holder"] == "owner", after=clicked
    )
    assert await wait_for(
        lambda: call.received.first_silence_after(clicked, frames=10), timeout_s=3
    ), "the twin's answer did not stop"
    quiet = call.received.first_silence_after(clicked, frames=10)
    assert quiet is not None

    # The owner talks: the guest hears them, and the avatar's mouth moves with their voice.
    pcm, rate = read_wav("arctic_a0009.wav")
    said = await console.mic.say(pcm, rate)
    heard = call.received.first_sound_after(said[0])
    assert heard is not None, "the guest did not hear the owner"
    assert heard < said[1] + 0.5
    moving = [m for t, m in call.received.mouth if said[0] <= t <= said[1] + 0.3]
    assert max(moving) > MOUTH_MOVING, max(moving)
    owner_frames = [a for t, a in call.received.animation if a["speaker"] == "owner"]
    assert owner_frames
    assert max(a["mouth_open"] for a in owner_frames) > 0.2

    # The owner's words are transcribed into the conversation, labelled as theirs.
    _, caption = await call.wait_message(
        lambda m: m["type"] == "caption" and m["who"] == "owner" and m["final"], timeout_s=20
    )
    assert "gregson" in caption["text"].lower()

    # While the owner holds the floor, the twin does not answer.
    asked = time.monotonic()
    call.ask_text("What did you find on the rooftops?")
    await asyncio.sleep(2.0)
    assert not [m for t, m in call.received.messages if t > asked and m["type"] == "reply"]

    released = time.monotonic()
    await console.hand_back()
    await call.wait_message(
        lambda m: m["type"] == "floor" and m["holder"] == "twin", after=released
    )
    # The twin answers again, and knows what the owner said.
    call.ask_text("Who did he face across the table?")
    _, reply = await call.wait_message(
        lambda m: m["type"] == "reply" and m["final"], after=released, timeout_s=30
    )
    assert "gregson" in reply["text"].lower(), reply
    assert any(c["source_id"].startswith("live:") for c in reply["citations"]), reply

    # The audit has every line spoken, by whom, and the floor changes, in order.
    records = await console.audit()
    spoken = [(r["speaker"], r["text"]) for r in records if r["kind"] == "spoken"]
    assert any(who == "owner" and "gregson" in text.lower() for who, text in spoken)
    assert any(who == "twin" and "gregson" in text.lower() for who, text in spoken)
    # The answer the owner cut into is marked where it stopped.
    assert any(r["kind"] == "cut" and "owner took over" in r["text"] for r in records)
    floor = [r["text"] for r in records if r["kind"] == "floor"]
    assert floor[0].startswith("taken")
    assert "handed back" in floor[-1]
    assert all(r["guest_id"] == "ada" for r in records)
    times = [r["ts"] for r in records]
    assert times == sorted(times)
    # And `twincast audit` prints the same, from the durable stream.
    code, out, err = await run_twincast(
        "audit", call.session_id, "--nats-url", stack.settings.nats_url
    )
    assert code == 0, err
    assert "gregson" in out.lower()
    assert "owner" in out


async def test_guest_cannot_take_the_floor_and_is_recorded(
    live: tuple[TwinCall, OwnerConsoleClient, GatewayService],
) -> None:
    call, console, service = live
    guest_token, _ = tokens(service)
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {guest_token}"}) as http,
        http.post(
            f"{console.base_url}/api/sessions/{call.session_id}/floor",
            json={"console": call.peer_id},
        ) as response,
    ):
        assert response.status == 403
        assert "only the owner" in (await response.json())["error"]
    records = await console.audit()
    assert any(r["kind"] == "refused" and r["speaker"] == "guest" for r in records)
    assert service.sessions[call.session_id].floor is None


async def test_second_console_cannot_steal_and_a_lost_console_loses_the_floor(
    live: tuple[TwinCall, OwnerConsoleClient, GatewayService],
) -> None:
    call, console, service = live
    _, owner_token = tokens(service)
    await console.take_over()
    async with OwnerConsoleClient(base_url=console.base_url, token=owner_token) as second:
        await second.open(call.session_id)
        with pytest.raises(ConsoleError) as refused:
            await second.take_over()
        assert refused.value.status == 409
        assert refused.value.body["holder"] == console.peer_id
        # The first console vanishes (stops renewing): after the lease, the twin has the floor.
        console.stop_renewing()
        vanished = time.monotonic()
        await call.wait_message(
            lambda m: m["type"] == "floor" and m["holder"] == "twin", timeout_s=6
        )
        assert time.monotonic() - vanished >= 1.0, "the floor went before the lease ran out"
        with pytest.raises(ConsoleError) as lost:
            await console.renew()
        assert lost.value.status == 409
        # Now the second console may take it, with a larger fence.
        assert (await second.take_over())["fence"] > (console.fence or 0)
        await second.hand_back()
    records = await console.audit()
    reasons = [r["text"] for r in records if r["kind"] == "floor"]
    assert any("expired" in text for text in reasons)


async def test_say_speaks_the_owners_line_in_the_twins_voice(
    live: tuple[TwinCall, OwnerConsoleClient, GatewayService],
) -> None:
    call, console, _ = live
    sent = time.monotonic()
    await console.say("Tell Ada I will call her on Friday.")
    _, reply = await call.wait_message(
        lambda m: m["type"] == "reply" and m["final"], after=sent, timeout_s=20
    )
    assert reply["author"] == "owner"
    assert "Friday" in reply["text"]
    assert await wait_for(lambda: call.received.first_sound_after(sent), timeout_s=10)
    records = await console.audit()
    assert any(r["author"] == "owner" and "Friday" in r["text"] for r in records)


async def test_shadow_mode_holds_replies_until_the_owner_decides(
    live: tuple[TwinCall, OwnerConsoleClient, GatewayService], nc: nats.aio.client.Client
) -> None:
    call, console, _ = live
    await console.shadow(True)

    async def draft_for(question: str) -> dict[str, object]:
        asked = time.monotonic()
        call.ask_text(question)
        _, draft = await console.wait_message(lambda m: m["type"] == "draft", after=asked)
        await asyncio.sleep(1.0)
        held = [m for t, m in call.received.messages if t > asked and m["type"] == "reply"]
        assert not held, "a draft reached the guest before the owner approved it"
        return draft

    draft = await draft_for("What did you find on the rooftops?")
    decided = time.monotonic()
    await console.decide(str(draft["draft_id"]), "approve")
    _, reply = await call.wait_message(
        lambda m: m["type"] == "reply" and m["final"], after=decided, timeout_s=20
    )
    assert reply["author"] == "twin"
    assert reply["citations"]
    assert reply["text"] in str(draft["text"])

    draft = await draft_for("What did you find on the rooftops?")
    await console.take_over()
    # While the owner holds the floor the twin cannot speak it: refused, and still pending.
    with pytest.raises(ConsoleError) as refused:
        await console.decide(str(draft["draft_id"]), "approve")
    assert refused.value.status == 409
    assert "hand it back" in str(refused.value.body["error"])
    # One that slipped past the console's check (the floor taken just after) is not spoken
    # by reasoning either.
    slipped = DraftDecided(
        session_id=call.session_id, draft_id=str(draft["draft_id"]), decision="approve"
    )
    sent = time.monotonic()
    await nc.publish(
        s.CONTROL.of(call.session_id), slipped.model_dump_json().encode(), headers=JSON
    )
    await asyncio.sleep(1.0)
    assert not [m for t, m in call.received.messages if t > sent and m["type"] == "reply"]
    await console.hand_back()
    decided = time.monotonic()
    await console.decide(str(draft["draft_id"]), "approve")
    _, reply = await call.wait_message(
        lambda m: m["type"] == "reply" and m["final"], after=decided, timeout_s=20
    )
    assert reply["text"] in str(draft["text"])

    draft = await draft_for("What do you think about bees?")
    decided = time.monotonic()
    await console.decide(str(draft["draft_id"]), "edit", "Bees are for another day, Ada.")
    _, edited = await call.wait_message(
        lambda m: m["type"] == "reply" and m["final"], after=decided, timeout_s=20
    )
    assert edited["author"] == "owner"
    assert edited["text"] == "Bees are for another day, Ada."

    draft = await draft_for("What did you find on the rooftops?")
    decided = time.monotonic()
    await console.decide(str(draft["draft_id"]), "reject")
    await asyncio.sleep(1.5)
    assert not [m for t, m in call.received.messages if t > decided and m["type"] == "reply"]
    # A draft is decided once.
    with pytest.raises(ConsoleError):
        await console.decide("not-a-draft!", "approve")
    await console.shadow(False)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("POST", "floor", "{not json", 400, "json"),
        ("POST", "floor", {"console": "x", "extra": 1}, 400, "extra"),
        ("POST", "floor", {"console": "no-such-console"}, 409, "connect this console"),
        ("POST", "floor/renew", {"console": "x"}, 400, "fence"),
        ("POST", "say", {"text": ""}, 400, "text"),
        ("PUT", "shadow", {"on": "maybe"}, 400, "on"),
        ("POST", "drafts/abc", {"decision": "edit"}, 400, "new text"),
        ("POST", "drafts/abc", {"decision": "shrug"}, 400, "decision"),
    ],
)
async def test_bad_console_requests_get_clear_4xx(
    live: tuple[TwinCall, OwnerConsoleClient, GatewayService],
    method: str,
    path: str,
    body: object,
    status: int,
    reason: str,
) -> None:
    call, console, service = live
    _, owner_token = tokens(service)
    data = body if isinstance(body, str) else None
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {owner_token}"}) as http,
        http.request(
            method,
            f"{console.base_url}/api/sessions/{call.session_id}/{path}",
            data=data,
            json=None if data is not None else body,
        ) as response,
    ):
        assert response.status == status
        assert reason in (await response.json())["error"].lower()
    assert service.sessions[call.session_id].floor is None


async def test_console_refuses_forged_unknown_and_foreign(stack: Stack) -> None:
    url, service = gateway(stack)
    guest_token, owner = tokens(service)
    other = service.signer.issue(twin="someone-else", scope="private", ttl_s=60, role="owner")
    cases = [
        ({}, "/api/console/sessions", 401),
        # A guest may not even see which sessions are live, or who holds their floors.
        ({"Authorization": f"Bearer {guest_token}"}, "/api/console/sessions", 403),
        ({"Authorization": "Bearer forged.token"}, "/api/console/sessions", 401),
        ({"Authorization": f"Bearer {owner}"}, "/api/sessions/nope/audit", 404),
        ({"Authorization": f"Bearer {other}"}, "/api/sessions/nope/audit", 404),
    ]
    async with aiohttp.ClientSession() as http:
        for headers, path, status in cases:
            async with http.get(f"{url}{path}", headers=headers) as response:
                assert response.status == status, (path, headers)
                assert (await response.json())["error"]
        guest, _ = tokens(service)
        async with http.get(f"{url}/console/{guest}") as page:
            assert page.status == 403
        async with http.get(f"{url}/console/{owner}") as page:
            assert page.status == 200
            assert "Owner console" in await page.text()
