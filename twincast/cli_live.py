"""`twincast demo` and `twincast link`: the live avatar from the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from twincast.runtime import EXAMPLES, StackError, read_run_file
from twincast_shared.settings import CommonSettings

DEFAULT_QUESTION = EXAMPLES / "juniper" / "questions" / "rooftops.wav"


@click.command()
@click.option(
    "--question",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_QUESTION,
    show_default=True,
    help="a mono 16-bit WAV the client speaks",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("twincast-demo"),
    show_default=True,
    help="folder for the recording of what the twin sent back",
)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def demo(question: Path, out: Path, as_json: bool) -> None:
    """Start everything, call the twin over WebRTC, speak a question, record the answer."""
    from twincast.demo import configure_client_ice, live_stack, read_speech, spoken_turn
    from twincast.rtc_client import TwinCall
    from twincast_gateway.faces import mouth_box_for

    try:
        pcm, rate = read_speech(question)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    recording = out / "twin.mp4"
    click.echo("starting NATS, Valkey and the five services …", err=True)

    async def call(base_url: str, token: str) -> dict[str, object]:
        configure_client_ice()
        box = mouth_box_for(EXAMPLES / "juniper")
        async with TwinCall(
            base_url=base_url, token=token, record=recording, mouth_box=box
        ) as live:
            await live.connected(timeout_s=20)
            click.echo("connected over WebRTC; asking …", err=True)
            turn = await spoken_turn(live, pcm, rate)
            await asyncio.sleep(0.5)
        return {
            "transcript": turn.transcript,
            "reply": turn.reply,
            "citations": turn.citations,
            "deferred": turn.deferred,
            "recording": str(recording),
            "after_speech_end_ms": turn.stages_ms(),
        }

    try:
        with live_stack() as (urls, token):
            assert urls.gateway is not None
            result = asyncio.run(call(urls.gateway, token))
    except (StackError, TimeoutError, RuntimeError) as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"you said:    {result['transcript']}")
    click.echo(f"twin said:   {result['reply']}")
    for c in result["citations"]:  # type: ignore[attr-defined]
        where = ", ".join(x for x in (c.get("date"), c.get("location")) if x)
        click.echo(f"  source:    {c['title']}" + (f" ({where})" if where else ""))
    stages = result["after_speech_end_ms"]
    assert isinstance(stages, dict)
    click.echo("after you stopped talking:")
    labels = {
        "transcript": "final transcript",
        "reply_text": "reply text",
        "reply_audio": "reply audio",
        "mouth": "mouth moving",
    }
    for key, label in labels.items():
        if key in stages:
            click.echo(f"  {label:<17} {stages[key]:7.0f} ms")
    click.echo(f"recording:   {recording} (what the twin sent: video + audio)")


@click.command()
@click.option("--twin", default=None, help="default: the twin `twincast up` serves")
@click.option("--scope", type=click.Choice(["public", "colleagues", "private"]), default="public")
@click.option("--guest", default=None, help="who the link is for (the twin remembers them)")
@click.option("--ttl", type=float, default=24.0, show_default=True, help="hours it stays valid")
@click.option("--owner", is_flag=True, help="the owner's console link instead of a guest's")
@click.option(
    "--token-only", is_flag=True, help="just the token, for `Authorization: Bearer` (APIs)"
)
@click.option("--state-dir", type=click.Path(path_type=Path))
def link(
    twin: str | None,
    scope: str,
    guest: str | None,
    ttl: float,
    owner: bool,
    token_only: bool,
    state_dir: Path | None,
) -> None:
    """Print a signed, expiring join link to the running twin (or its owner's console)."""
    print_link(
        state_dir=state_dir,
        twin=twin,
        scope=scope,
        guest=guest,
        ttl_s=ttl * 3600,
        owner=owner,
        token_only=token_only,
    )


def print_link(
    *,
    state_dir: Path | None,
    twin: str | None,
    scope: str,
    guest: str | None = None,
    ttl_s: float,
    owner: bool = False,
    token_only: bool = False,
) -> None:
    from twincast_gateway.tokens import TokenSigner, load_or_create_secret

    settings = CommonSettings(state_dir=state_dir) if state_dir else CommonSettings()
    running = read_run_file(settings.state_dir)
    if running is None or running.gateway is None:
        raise click.ClickException("no running twin found: start one with `twincast up`")
    secret_file = settings.state_dir / "gateway.secret"
    if not secret_file.exists():
        raise click.ClickException(f"{secret_file} is missing; is the gateway running?")
    signer = TokenSigner(secret=load_or_create_secret(secret_file))
    token = signer.issue(
        twin=twin or settings.twin,
        scope=scope,  # type: ignore[arg-type]
        guest=guest,
        ttl_s=ttl_s,
        role="owner" if owner else "guest",
    )
    if token_only:
        click.echo(token)
    else:
        click.echo(f"{running.gateway}/{'console' if owner else 'join'}/{token}")


@click.command("sessions")
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
    from bench.sessions import run

    steps = [int(x) for x in counts.split(",") if x.strip()]
    click.echo(json.dumps(run(counts=steps, measure_s=measure), indent=None if as_json else 2))


@click.command("e2e")
@click.option("--turns", type=int, default=20, show_default=True)
@click.option("--barge-ins", type=int, default=8, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_e2e(turns: int, barge_ins: int, as_json: bool) -> None:
    """Voice to voice over WebRTC on loopback: reply audio, mouth, barge-in, A/V skew."""
    from bench.e2e import run

    result = run(turns=turns, barge_ins=barge_ins)
    click.echo(json.dumps(result, indent=None if as_json else 2))


@click.command("render")
@click.option("--seconds", type=float, default=10.0, show_default=True, help="video per run")
@click.option("--runs", type=int, default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON only (the default output is JSON too)")
def bench_render(seconds: float, runs: int, as_json: bool) -> None:
    """CPU per avatar frame: animation, portrait rendering and VP8 encoding."""
    from bench.render import run

    click.echo(json.dumps(run(seconds=seconds, runs=runs), indent=None if as_json else 2))
