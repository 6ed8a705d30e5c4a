"""`twincast bench bus`: one contract event hop between two services, through a real nats-server.

The sender (this process) and the receiver (a child process) are built the way services are:
`make_broker` (FastStream with the NATS telemetry middleware) and `Bus`. The sender publishes
`ReplyChunk` events with `Bus.publish` at a steady, paced rate (open loop); the receiver consumes
them with `Bus.on_event`, so each event goes through the FastStream subscriber, the telemetry
middleware and pydantic validation of the contract model before the handler sees it.

Latency is one way. Just before building and publishing an event, the sender writes
`time.monotonic_ns()` into its text (CLOCK_MONOTONIC is one clock for every process on Linux);
the handler subtracts that from its own reading when the validated event reaches it.

With two or more CPUs the receiver, the busiest of the three processes, gets a core of its own;
the sender and nats-server share another (`cpu_affinity` in the result says which).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final
from uuid import uuid4

import numpy as np
from faststream.message import StreamMessage

from twincast.runtime import nats_server, nats_server_bin, terminate
from twincast_shared.bus import Bus, make_broker
from twincast_shared.contract import ReplyChunk
from twincast_shared.contract import subjects as s
from twincast_shared.heap import settle
from twincast_shared.logging import setup_logging
from twincast_shared.settings import CommonSettings
from twincast_shared.telemetry import make_tracer_provider
from twincast_testkit.stats import percentile

PING: Final = s.Subject("bench.ping")
COUNT: Final = s.Subject("bench.count")
DONE: Final = s.Subject("bench.done")
SENDER: Final = "bench-sender"
RECEIVER: Final = "bench-receiver"
PATH: Final = (
    "Bus.publish(ReplyChunk) -> nats-server (core NATS, loopback) -> FastStream subscriber "
    "(NATS telemetry middleware) -> pydantic ReplyChunk -> Bus.on_event handler, in another process"
)
# A reply chunk the size a real one has: one sentence of the twin's answer.
SENTENCE: Final = (
    "The bridge was finished in 1932, and my grandfather walked across it on the first day, "
    "which he never stopped telling people about."
)
# asyncio wakes timers in whole milliseconds (epoll), too coarse for 0.5 ms between events:
# gaps under ASYNC_MIN_S are slept with time.sleep (clock_nanosleep) to SPIN_S before the due
# time, then spun in the event loop, so events leave on time without burning the sender's core.
ASYNC_MIN_S: Final = 0.003
SPIN_S: Final = 0.0001
STRAGGLERS_S: Final = 5.0
PR_SET_PDEATHSIG: Final = 1


def _child_setup(cpus: set[int] | None) -> Callable[[], None]:
    """Runs in a child before exec: die with us, and stay on `cpus` (threads included)."""

    def setup() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpus:
            os.sched_setaffinity(0, cpus)

    return setup


async def _raw_body(msg: StreamMessage[Any]) -> bytes:
    return msg.body


# --- the receiver: a service in its own process -----------------------------------------------


async def receive(
    *, nats_url: str, run_id: str, count: int, timeout_s: float, out: Path
) -> dict[str, object]:
    """Consume reply chunks of session `run_id` until told it is done; write what arrived."""
    settings = CommonSettings(nats_url=nats_url)
    setup_logging(settings.log_level, service=RECEIVER)
    provider = make_tracer_provider(RECEIVER)
    broker = make_broker(settings, service=RECEIVER, tracer_provider=provider)
    bus = Bus(broker, service=RECEIVER)
    seqs: list[int] = []
    latencies_ns: list[int] = []
    all_in = asyncio.Event()
    finished = asyncio.Event()

    async def on_reply(event: ReplyChunk) -> None:
        now = time.monotonic_ns()
        if event.session_id != run_id:
            return
        latencies_ns.append(now - int(event.text.partition(" ")[0]))
        seqs.append(event.seq)
        if len(seqs) >= count:
            all_in.set()

    bus.on_event(s.REPLY, ReplyChunk, on_reply)

    @broker.subscriber(PING.of(run_id), decoder=_raw_body)
    async def ping(body: bytes) -> bytes:
        return b"pong"

    @broker.subscriber(COUNT.of(run_id), decoder=_raw_body)
    async def received(body: bytes) -> bytes:
        return str(len(seqs)).encode()

    @broker.subscriber(DONE.of(run_id), decoder=_raw_body)
    async def done(body: bytes) -> bytes:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), timeout=STRAGGLERS_S)
        finished.set()
        return str(len(seqs)).encode()

    await broker.start()
    settle()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), timeout=timeout_s)
    finally:
        result: dict[str, object] = {
            "received": len(seqs),
            "seqs": seqs,
            "latencies_ns": latencies_ns,
            "cpus": sorted(os.sched_getaffinity(0)),
        }
        partial = out.with_suffix(".partial")
        partial.write_text(json.dumps(result))
        partial.replace(out)
        await broker.stop()
        provider.shutdown()
    return result


# --- the sender: this process -------------------------------------------------------------------


async def _until(due: float) -> None:
    """Return at perf_counter() == `due`, give or take a few microseconds."""
    # The event just published is written to the socket by the connection's flusher task,
    # on the loop's next turn: let that happen before blocking the loop.
    await asyncio.sleep(0)
    while (gap := due - time.perf_counter()) > 0:
        if gap > ASYNC_MIN_S:
            await asyncio.sleep(gap - ASYNC_MIN_S / 2)
        elif gap > SPIN_S:
            time.sleep(gap - SPIN_S)  # noqa: ASYNC251 - on purpose, see ASYNC_MIN_S
        else:
            await asyncio.sleep(0)


async def _wait_receiver(bus: Bus, run_id: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60.0
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"bench receiver exited with {process.returncode}")
        with contextlib.suppress(Exception):
            reply = await bus.broker.request(b"", PING.of(run_id), timeout=0.5)
            if reply.body == b"pong":
                return
        if time.monotonic() > deadline:
            raise RuntimeError("bench receiver did not answer on the bus within 60 s")
        await asyncio.sleep(0.05)


async def _wait_drained(bus: Bus, run_id: str, sent: int) -> None:
    """Until the receiver has consumed all `sent` events (or a few seconds have passed)."""
    deadline = time.monotonic() + STRAGGLERS_S
    while time.monotonic() < deadline:
        reply = await bus.broker.request(b"", COUNT.of(run_id), timeout=STRAGGLERS_S)
        if int(reply.body) >= sent:
            return
        await asyncio.sleep(0.01)


async def _publish_paced(bus: Bus, run_id: str, first: int, n: int, rate: float) -> list[float]:
    """Publish reply chunks `first`..`first + n - 1`, one every 1/rate s; when each was sent."""
    period = 1.0 / rate
    sent_at: list[float] = []
    due = time.perf_counter()
    for seq in range(first, first + n):
        await _until(due)
        now = time.perf_counter()
        # Behind by more than a period (the sender was descheduled or collected garbage):
        # start the schedule again from now rather than send a burst to catch up, whose
        # queueing in the receiver would read as hop latency.
        due = now if now - due > period else due
        sent_at.append(now)
        await bus.publish(
            ReplyChunk(
                session_id=run_id,
                reply_id=run_id,
                in_reply_to=run_id,
                seq=seq,
                text=f"{time.monotonic_ns()} {SENTENCE}",
                final=False,
            )
        )
        due += period
    return sent_at


async def send(
    *,
    nats_url: str,
    run_id: str,
    warmup: int,
    events: int,
    rate: float,
    receiver: subprocess.Popen[bytes],
) -> list[float]:
    """Warm up, let the receiver drain, then publish the measured events; their send times."""
    settings = CommonSettings(nats_url=nats_url)
    provider = make_tracer_provider(SENDER)
    broker = make_broker(settings, service=SENDER, tracer_provider=provider)
    bus = Bus(broker, service=SENDER)
    await broker.start()
    try:
        await _wait_receiver(bus, run_id, receiver)
        if warmup:
            await _publish_paced(bus, run_id, 0, warmup, rate)
            # Start-up stalls in the receiver (first-use imports, a full GC) leave a backlog;
            # measured events start once it is gone so that it does not count against them.
            await _wait_drained(bus, run_id, warmup)
        sent_at = await _publish_paced(bus, run_id, warmup, events, rate)
        await broker.request(b"", DONE.of(run_id), timeout=STRAGGLERS_S + 10.0)
    finally:
        await broker.stop()
        provider.shutdown()
    return sent_at


@contextlib.contextmanager
def _nats_server(workdir: Path, cpus: set[int] | None) -> Iterator[str]:
    log = workdir / "nats-server.log"
    with nats_server(log=log, cwd=workdir, preexec_fn=_child_setup(cpus)) as url:
        yield url


def _nats_version() -> str:
    try:
        found = subprocess.run(
            [str(nats_server_bin()), "--version"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired, RuntimeError) as error:
        return f"unknown ({error})"
    return found.stdout.strip() or found.stderr.strip()


def _cpu_plan() -> tuple[set[int], set[int]] | None:
    """(sender and nats-server, receiver): the receiver alone on a core, if there are two."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, {cpus[1]}


def _ms(values: np.ndarray[Any, np.dtype[np.float64]], q: float) -> float:
    return round(percentile(values, q), 3)


def run_bus_bench(
    *,
    events: int = 10_000,
    rate: float = 2_000.0,
    warmup: int = 500,
    nats_url: str | None = None,
) -> dict[str, object]:
    """One `ReplyChunk` hop, service to service: latency of `events` measured after `warmup`.

    Starts a nats-server of its own unless given `nats_url`; that one must not be a live
    TwinCast stack's, whose reply consumers would take the bench's reply chunks for real ones.
    """
    if events < 2 or warmup < 0 or rate <= 0:
        raise ValueError("events must be >= 2, warmup >= 0 and rate > 0")
    run_id = f"bench-{uuid4().hex[:12]}"
    plan = _cpu_plan()
    own_cpus = os.sched_getaffinity(0)
    with (
        tempfile.TemporaryDirectory(prefix="twincast-bench-bus-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        url = nats_url or stack.enter_context(_nats_server(workdir, plan[0] if plan else None))
        out = workdir / "receiver.json"
        receiver_log = workdir / "receiver.log"
        argv = [sys.executable, "-m", "twincast_bench.bus", "receiver", "--nats-url", url]
        argv += ["--run-id", run_id, "--count", str(warmup + events), "--out", str(out)]
        argv += ["--timeout", str(120.0 + 2.0 * (warmup + events) / rate)]
        with open(receiver_log, "wb") as log_file:
            receiver = subprocess.Popen(
                argv,
                cwd=Path(__file__).resolve().parents[2],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(plan[1] if plan else None),
            )
        stack.callback(terminate, receiver)
        if plan is not None:
            os.sched_setaffinity(0, plan[0])
            stack.callback(os.sched_setaffinity, 0, own_cpus)
        try:
            sent_at = asyncio.run(
                send(
                    nats_url=url,
                    run_id=run_id,
                    warmup=warmup,
                    events=events,
                    rate=rate,
                    receiver=receiver,
                )
            )
            with contextlib.suppress(subprocess.TimeoutExpired):
                receiver.wait(timeout=30)
            if not out.exists():
                raise RuntimeError("bench receiver wrote no result")
        except Exception as error:
            tail = receiver_log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{error}; the receiver's log ends:\n{tail}") from error
        got = json.loads(out.read_text())
    measured = [
        (seq, ns) for seq, ns in zip(got["seqs"], got["latencies_ns"], strict=True) if seq >= warmup
    ]
    if not measured:
        raise RuntimeError("no measured event reached the receiver")
    latencies = np.array([ns for _, ns in measured], dtype=np.float64) / 1e6
    span = sent_at[-1] - sent_at[0]
    example = ReplyChunk(
        session_id=run_id,
        reply_id=run_id,
        in_reply_to=run_id,
        seq=warmup + events - 1,
        text=f"{time.monotonic_ns()} {SENTENCE}",
        final=False,
    )
    return {
        "events": events,
        "lost": events - len({seq for seq, _ in measured}),
        "p50_ms": _ms(latencies, 50),
        "p90_ms": _ms(latencies, 90),
        "p99_ms": _ms(latencies, 99),
        "p999_ms": _ms(latencies, 99.9),
        "max_ms": round(float(latencies.max()), 3),
        "mean_ms": round(float(latencies.mean()), 3),
        "rate_per_s": round((len(sent_at) - 1) / span, 1),
        "payload_bytes": len(example.model_dump_json().encode()),
        "warmup": warmup,
        "nats_server": _nats_version(),
        "path": PATH,
        "cpu_affinity": (
            {
                "sender": sorted(plan[0]),
                "nats_server": sorted(plan[0]) if nats_url is None else "not started here",
                "receiver": got["cpus"],
            }
            if plan is not None
            else None
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m twincast_bench.bus")
    commands = parser.add_subparsers(dest="command", required=True)
    receiver = commands.add_parser("receiver", help="the receiving service (the bench starts it)")
    receiver.add_argument("--nats-url", required=True)
    receiver.add_argument("--run-id", required=True)
    receiver.add_argument("--count", type=int, required=True)
    receiver.add_argument("--out", type=Path, required=True)
    receiver.add_argument("--timeout", type=float, default=600.0)
    bench = commands.add_parser("run", help="run the benchmark and print JSON")
    bench.add_argument("--events", type=int, default=10_000)
    bench.add_argument("--rate", type=float, default=2_000.0)
    bench.add_argument("--warmup", type=int, default=500)
    bench.add_argument("--nats-url", default=None)
    args = parser.parse_args(argv)
    if args.command == "run":
        result = run_bus_bench(
            events=args.events, rate=args.rate, warmup=args.warmup, nats_url=args.nats_url
        )
        print(json.dumps(result))
        return
    asyncio.run(
        receive(
            nats_url=args.nats_url,
            run_id=args.run_id,
            count=args.count,
            timeout_s=args.timeout,
            out=args.out,
        )
    )


if __name__ == "__main__":
    main()
