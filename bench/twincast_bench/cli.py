"""`twincast bench …`: each benchmark starts its own servers and prints JSON.

`twincast` finds this group through the `twincast.commands` entry point; each command imports
its benchmark only when it runs.
"""

from __future__ import annotations

import json

import click


@click.group()
def bench() -> None:
    """Benchmarks; each prints JSON."""


@bench.command("bus")
@click.option("--events", type=int, default=10_000, show_default=True)
@click.option("--rate", type=float, default=2_000.0, show_default=True, help="events per second")
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_bus(events: int, rate: float, as_json: bool) -> None:
    """One event hop through a real nats-server between two processes."""
    from twincast_bench.bus import run_bus_bench

    click.echo(json.dumps(run_bus_bench(events=events, rate=rate), indent=None if as_json else 2))


@bench.command("tts")
@click.option("--runs", type=int, default=5, show_default=True, help="passes over the reply set")
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_tts(runs: int, as_json: bool) -> None:
    """Reply text in → first audio chunk out, through the tts service on a real bus."""
    from twincast_bench.tts import run_tts_bench

    click.echo(json.dumps(run_tts_bench(runs=runs), indent=None if as_json else 2))


@bench.command("stt")
@click.option("--runs", type=int, default=5, show_default=True, help="passes over the recordings")
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_stt(runs: int, as_json: bool) -> None:
    """Recorded speech streamed in real time through the stt service on a real bus."""
    from twincast_bench.stt import run_stt_bench

    click.echo(json.dumps(run_stt_bench(runs=runs), indent=None if as_json else 2))


@bench.command("twin")
@click.option("--runs", type=int, default=3, show_default=True, help="passes over the question set")
@click.option(
    "--chunks", type=int, default=100_000, show_default=True, help="retrieval corpus size"
)
@click.option(
    "--composer",
    type=click.Choice(["extractive", "llama", "openai"]),
    help="default: TWINCAST_REASONING_COMPOSER, else extractive",
)
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_twin(runs: int, chunks: int, composer: str | None, as_json: bool) -> None:
    """The sample twin's question set through reasoning, and retrieval over 100k chunks."""
    from twincast_bench.twin import run_twin_bench

    result = run_twin_bench(runs=runs, retrieval_chunks=chunks, composer=composer)
    click.echo(json.dumps(result, indent=None if as_json else 2))


@bench.command("mood")
@click.option("--no-bus", is_flag=True, help="engine only: skip the latency over a real bus")
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_mood(no_bus: bool, as_json: bool) -> None:
    """Guest mood on the labelled set in examples/mood: words alone vs words and voice."""
    from twincast_bench.mood import run_mood_bench

    result = run_mood_bench(bus=not no_bus)
    click.echo(json.dumps(result, indent=None if as_json else 2))


@bench.command("sessions")
@click.option(
    "--counts",
    default="2,4,6,8,10,12,14,16,20",
    show_default=True,
    help="session counts to try, in order; stops at the first that misses 25 fps",
)
@click.option("--measure", type=float, default=8.0, show_default=True, help="seconds per step")
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_sessions(counts: str, measure: float, as_json: bool) -> None:
    """Concurrent live avatar sessions one gateway process holds at 25 fps."""
    from twincast_bench.sessions import run

    steps = [int(x) for x in counts.split(",") if x.strip()]
    click.echo(json.dumps(run(counts=steps, measure_s=measure), indent=None if as_json else 2))


@bench.command("e2e")
@click.option("--turns", type=int, default=20, show_default=True)
@click.option("--barge-ins", type=int, default=8, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_e2e(turns: int, barge_ins: int, as_json: bool) -> None:
    """Voice to voice over WebRTC on loopback: reply audio, mouth, barge-in, A/V skew."""
    from twincast_bench.e2e import run

    result = run(turns=turns, barge_ins=barge_ins)
    click.echo(json.dumps(result, indent=None if as_json else 2))


@bench.command("render")
@click.option("--seconds", type=float, default=10.0, show_default=True, help="video per run")
@click.option("--runs", type=int, default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_render(seconds: float, runs: int, as_json: bool) -> None:
    """CPU per avatar frame: animation, portrait rendering and VP8 encoding."""
    from twincast_bench.render import run

    click.echo(json.dumps(run(seconds=seconds, runs=runs), indent=None if as_json else 2))


@bench.command("takeover")
@click.option("--runs", type=int, default=12, show_default=True, help="takeovers, half mid-answer")
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_takeover(runs: int, as_json: bool) -> None:
    """The owner's voice at the guest after the takeover click, and the hand back."""
    from twincast_bench.takeover import run

    click.echo(json.dumps(run(runs=runs), indent=None if as_json else 2))
