"""`twincast`: run the twin, ask it something, link to it, audit it.

Other installed packages add commands under the `twincast.commands` entry point group (the
benchmarks add `bench`, the testkit `demo`); the CLI imports none of them itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Final

import click
from pydantic import ValidationError

from twincast.cli_brain import ask_twin, people
from twincast.cli_contract import contract
from twincast.cli_face import face
from twincast.cli_live import link, print_link
from twincast.cli_owner import audit
from twincast.cli_twin import twin
from twincast.runtime import Stack, StackError, private_stack, read_run_file
from twincast.services import SERVICES
from twincast_shared.settings import CommonSettings


def _settings(**overrides: Any) -> CommonSettings:
    try:
        return CommonSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        raise click.UsageError(f"invalid settings:\n{error}") from None


PLUGINS: Final = "twincast.commands"


class _WithPlugins(click.Group):
    """This package's commands, and those entry points add; a plugin loads when it is asked for."""

    def _plugins(self) -> dict[str, EntryPoint]:
        found = entry_points(group=PLUGINS)
        return {ep.name: ep for ep in found if ep.name not in self.commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        plugin = self._plugins().get(cmd_name)
        if plugin is None:
            return None
        command = plugin.load()
        if not isinstance(command, click.Command):
            raise click.ClickException(f"{PLUGINS} entry point {plugin.value} is not a command")
        return command


@click.group(cls=_WithPlugins)
def main() -> None:
    """TwinCast: a person's AI twin that stands in for them, live."""


@main.command()
@click.option("--nats-url", help="use this NATS server instead of starting one")
@click.option("--redis-url", help="use this Redis/Valkey server instead of starting one")
@click.option("--state-dir", type=click.Path(path_type=Path), help="where data and logs live")
@click.option("--twin", help="the twin to serve (default: the sample twin, juniper)")
def up(
    nats_url: str | None, redis_url: str | None, state_dir: Path | None, twin: str | None
) -> None:
    """Start NATS, Valkey and all five services on this machine; Ctrl-C stops them all."""
    settings = _settings(state_dir=state_dir, twin=twin)
    stop_requested = False

    def request_stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = time.perf_counter()
    click.echo(f"starting TwinCast (state in {settings.state_dir}) …", err=True)
    stack = Stack(
        state_dir=settings.state_dir, nats_url=nats_url, redis_url=redis_url, twin=settings.twin
    )
    try:
        urls = stack.start()
    except StackError as error:
        stack.stop()
        raise click.ClickException(str(error)) from None
    except BaseException:
        stack.stop()
        raise
    click.echo(f"TwinCast is up in {time.perf_counter() - started:.1f} s")
    click.echo(f"  twin page   {urls.gateway}")
    click.echo(f"  NATS        {urls.nats}")
    click.echo(f"  Valkey      {urls.redis}")
    for name, url in urls.services.items():
        click.echo(f"  {name:<11} {url}/readyz")
    click.echo("Talk to it (open in a browser):")
    print_link(state_dir=settings.state_dir, twin=settings.twin, scope="public", ttl_s=24 * 3600)
    click.echo("Your owner console (keep this link to yourself):")
    print_link(
        state_dir=settings.state_dir,
        twin=settings.twin,
        scope="private",
        ttl_s=12 * 3600,
        owner=True,
    )
    click.echo('Or ask from here: twincast ask "What did you find on the rooftops?"')
    click.echo("Press Ctrl-C to stop.", err=True)
    code = 0
    try:
        while not stop_requested:
            dead = list(stack.watch())
            if dead:
                names = ", ".join(f"{c.name} (exit {c.process.returncode})" for c in dead)
                click.echo(f"stopped unexpectedly: {names}; shutting down", err=True)
                code = 1
                break
            time.sleep(0.2)
    finally:
        click.echo("stopping …", err=True)
        stack.stop()
        click.echo("stopped.", err=True)
    sys.exit(code)


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
@click.option("--nats-url")
@click.option("--redis-url")
@click.option("--health-port", type=int)
def run(service: str, nats_url: str | None, redis_url: str | None, health_port: int | None) -> None:
    """Run one service alone (settings from TWINCAST_* environment variables)."""
    from twincast.services import spec
    from twincast_shared.service import run_forever

    found = spec(service)
    overrides = {"nats_url": nats_url, "redis_url": redis_url, "health_port": health_port}
    try:
        settings = found.settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        raise click.UsageError(f"invalid settings for {service}:\n{error}") from None
    run_forever(found, settings)


@main.command()
@click.argument("question", required=False)
@click.option("--audio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="reply WAV path")
@click.option("--scope", type=click.Choice(["public", "colleagues", "private"]), default="public")
@click.option("--nats-url")
@click.option("--redis-url")
@click.option("--state-dir", type=click.Path(path_type=Path))
@click.option("--timeout", type=float, default=60.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def ask(
    question: str | None,
    audio: Path | None,
    out: Path | None,
    scope: str,
    nats_url: str | None,
    redis_url: str | None,
    state_dir: Path | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Ask the twin a typed QUESTION, or a spoken one with --audio FILE.wav."""
    from twincast.client import TurnFailed
    from twincast.client import ask as ask_turn
    from twincast_shared.contract import AudioFormatError

    if (question is None) == (audio is None):
        raise click.UsageError("give either a QUESTION or --audio FILE.wav")
    settings = _settings(nats_url=nats_url, redis_url=redis_url, state_dir=state_dir)
    running = None if nats_url or redis_url else read_run_file(settings.state_dir)
    if running is not None:
        settings = _settings(nats_url=running.nats, redis_url=running.redis, state_dir=state_dir)
    out_wav = out or Path(tempfile.gettempdir()) / f"twincast-reply-{os.getpid()}.wav"

    def turn() -> Any:
        return asyncio.run(
            ask_turn(
                settings,
                text=question,
                audio=audio,
                out_wav=out_wav,
                scope=scope,  # type: ignore[arg-type]
                timeout_s=timeout,
            )
        )

    try:
        if running is None and not (nats_url or redis_url):
            click.echo("no running twin found; starting one for this question …", err=True)
            needed = ("stt", "reasoning", "tts") if audio else ("reasoning", "tts")
            with private_stack(needed, twin=settings.twin) as urls:
                settings = _settings(nats_url=urls.nats, redis_url=urls.redis)
                result = turn()
        else:
            result = turn()
    except (TurnFailed, StackError, AudioFormatError) as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "transcript": result.transcript,
                    "reply": result.reply,
                    "reply_wav": result.reply_wav,
                    "timings_ms": result.timings_ms,
                    "citations": [c.model_dump() for c in result.citations],
                    "deferred": result.deferred,
                    "session_id": result.session_id,
                },
                indent=2,
            )
        )
        return
    click.echo(f"you:   {result.transcript}")
    click.echo(f"twin:  {result.reply}")
    for c in result.citations:
        click.echo(f"       source: {c.title} ({c.date or 'undated'}, {c.location})")
    click.echo(f"audio: {result.reply_wav}")
    click.echo("timings: " + ", ".join(f"{k} {v:.0f} ms" for k, v in result.timings_ms.items()))


twin.add_command(ask_twin)
twin.add_command(face)
twin.add_command(people)
main.add_command(twin)
main.add_command(link)
main.add_command(audit)
main.add_command(contract)
