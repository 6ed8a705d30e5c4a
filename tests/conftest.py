"""Real servers for the tests: nats-server and Valkey from their wheels, on free loopback ports.

The whole run happens in a private network namespace that has nothing but loopback (when the
kernel lets us make one): no test can reach past 127.0.0.1, and WebRTC peers, Chromium's
included, can only pair on it.
"""

from __future__ import annotations

from twincast_testkit.netns import enter_loopback_only_namespace

NETNS_REFUSED = enter_loopback_only_namespace()

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import nats
import nats.aio.client
import pytest
from nats.aio.msg import Msg
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from twincast.runtime import EXAMPLES, nats_server, valkey_server
from twincast.services import SERVICES, spec
from twincast_gateway import seed_portrait_from_dir
from twincast_reasoning import Embedder, create_twin_from_folder
from twincast_shared.bus import Bus, make_broker
from twincast_shared.service import RunningService, serve
from twincast_shared.sessions import SessionInfo, open_session
from twincast_shared.settings import CommonSettings
from twincast_shared.store import StateStore

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO / "tests" / "data" / "speech"


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nats_server(store=tmp_path_factory.mktemp("nats")) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with valkey_server(tmp_path_factory.mktemp("valkey"), durable=False) as url:
        yield url


@pytest.fixture(scope="session")
def settings(nats_url: str, redis_url: str) -> CommonSettings:
    return CommonSettings(nats_url=nats_url, redis_url=redis_url, twin="juniper")


@pytest.fixture(scope="session")
async def store(redis_url: str) -> AsyncIterator[StateStore]:
    store = StateStore.from_url(redis_url)
    await create_twin_from_folder(store, EXAMPLES / "juniper", embedder=Embedder())
    await seed_portrait_from_dir(store, "juniper", EXAMPLES / "juniper")
    yield store
    await store.close()


@dataclass
class Stack:
    settings: CommonSettings
    services: dict[str, RunningService]
    spans: InMemorySpanExporter
    tracer_provider: TracerProvider


def pytest_report_header() -> str:
    return f"network: {'loopback-only namespace' if NETNS_REFUSED is None else NETNS_REFUSED}"


@pytest.fixture(scope="session")
async def stack(
    settings: CommonSettings, store: StateStore, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """All five services in this process, each with its own broker connection to real NATS."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    running: dict[str, RunningService] = {}
    state_dir = tmp_path_factory.mktemp("state")
    async with contextlib.AsyncExitStack() as exits:
        for name in SERVICES:
            found = spec(name)
            service_settings: Any = found.settings(
                nats_url=settings.nats_url,
                redis_url=settings.redis_url,
                twin=settings.twin,
                health_port=0,
                state_dir=state_dir,
                # A console that vanishes loses the floor in 2 s here, not the default 5 s.
                **({"floor_lease_ms": 2_000} if name == "gateway" else {}),
            )
            running[name] = await exits.enter_async_context(
                serve(found, service_settings, tracer_provider=provider)
            )
        yield Stack(settings, running, spans, provider)
    provider.shutdown()


@pytest.fixture(scope="session")
def speech_files() -> dict[str, str]:
    rows = (SPEECH / "transcripts.tsv").read_text().strip().splitlines()
    return {name: text for name, text in (row.split("\t", 1) for row in rows)}


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[nats.aio.client.Client]:
    """A plain NATS connection for probing the bus from outside the services."""
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
async def client_bus(settings: CommonSettings) -> AsyncIterator[Bus]:
    """The project's own Bus, as a client outside the services (publishes only)."""
    broker = make_broker(settings, service="test-client")
    await broker.start()
    yield Bus(broker, service="test-client")
    await broker.stop()


@pytest.fixture
async def open_guest(store: StateStore) -> Callable[..., Awaitable[str]]:
    async def open_one(scope: str = "public") -> str:
        session = uuid4().hex
        await open_session(
            store,
            SessionInfo(session_id=session, twin_id="juniper", scope=scope),  # type: ignore[arg-type]
        )
        return session

    return open_one


M = TypeVar("M", bound=BaseModel)


async def collect(nc: nats.aio.client.Client, subject: str, model: type[M]) -> list[M]:
    """Every event published on `subject` from now on, decoded, in arrival order."""
    got: list[M] = []

    async def on(msg: Msg) -> None:
        got.append(model.model_validate_json(msg.data))

    await nc.subscribe(subject, cb=on)
    await nc.flush()
    return got


async def run_twincast(*args: str, timeout_s: float = 180) -> tuple[int, str, str]:
    """The `twincast` command as a user runs it; returns exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "twincast",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# What makes a test slow: a real server behind one of these fixtures, or a model its module loads.
_SERVER_FIXTURES = frozenset(
    {"nats_url", "redis_url", "settings", "store", "stack", "nc", "client_bus", "open_guest"}
)
_MODEL_MODULES = frozenset(
    {
        "test_stt_streaming",
        "test_tts",
        "test_index",
        "test_ingest",
        "test_composers",
        "test_twin_face",
        "test_avatar",
        "test_browser",
        "test_browser_console",
        "test_up",
        "test_cli",
        "test_ask",
        "test_bench_bus",
        "test_mood_engine",
        "test_gateway_rtc",
        "test_manifests",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = (
            item.module.__name__.rsplit(".", 1)[-1] if isinstance(item, pytest.Function) else ""
        )
        if module in _MODEL_MODULES or _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            continue
        item.add_marker(pytest.mark.fast)
