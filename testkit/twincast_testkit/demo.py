"""`twincast demo`: a guest without a browser calls the twin, asks, and records the answer.

A command of the testkit, which `twincast` finds through the `twincast.commands` entry point.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from twincast.runtime import EXAMPLES, StackError

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
    from twincast_gateway import mouth_box_for
    from twincast_testkit.rtc_client import TwinCall
    from twincast_testkit.turns import configure_client_ice, live_stack, read_speech, spoken_turn

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
