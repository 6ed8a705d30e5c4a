"""`twincast twin ask` and `twincast twin people`: the twin brain from the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from twincast.runtime import StackError, private_stack, read_run_file
from twincast_shared.settings import CommonSettings


def _settings(**overrides: Any) -> CommonSettings:
    return CommonSettings(**{k: v for k, v in overrides.items() if v is not None})


@click.command("ask")
@click.argument("name")
@click.argument("question")
@click.option("--guest", "guest_id", help="who is asking (the twin remembers people)")
@click.option("--scope", type=click.Choice(["public", "colleagues", "private"]), default="public")
@click.option("--session", "session_id", help="go on with an earlier conversation")
@click.option("--nats-url")
@click.option("--redis-url")
@click.option("--state-dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def ask_twin(
    name: str,
    question: str,
    guest_id: str | None,
    scope: str,
    session_id: str | None,
    nats_url: str | None,
    redis_url: str | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Ask twin NAME a typed QUESTION through the bus; prints the reply and its sources."""
    from twincast.client import TurnFailed, ask

    settings = _settings(nats_url=nats_url, redis_url=redis_url, state_dir=state_dir, twin=name)
    running = None if nats_url or redis_url else read_run_file(settings.state_dir)

    def turn(s: CommonSettings) -> Any:
        return asyncio.run(
            ask(
                s,
                text=question,
                scope=scope,  # type: ignore[arg-type]
                guest_id=guest_id,
                session_id=session_id,
                twin=name,
                speak=False,
            )
        )

    try:
        if running is not None:
            result = turn(_settings(nats_url=running.nats, redis_url=running.redis, twin=name))
        elif nats_url or redis_url:
            result = turn(settings)
        else:
            with private_stack(("reasoning",), twin=name) as urls:
                result = turn(_settings(nats_url=urls.nats, redis_url=urls.redis))
    except (TurnFailed, StackError) as error:
        raise click.ClickException(str(error)) from None
    citations = [c.model_dump() for c in result.citations]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "reply": result.reply,
                    "citations": citations,
                    "deferred": result.deferred,
                    "session_id": result.session_id,
                }
            )
        )
        return
    click.echo(result.reply)
    for c in result.citations:
        click.echo(f"  source: {c.title} ({c.date or 'undated'}, {c.location})")


@click.command("people")
@click.argument("name")
@click.option("--show", "show", help="print everything remembered about this guest")
@click.option("--delete", "delete", help="forget this guest entirely")
@click.option("--inbox", is_flag=True, help="questions the twin promised to pass on")
@click.option("--redis-url")
@click.option("--state-dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def people(
    name: str,
    show: str | None,
    delete: str | None,
    inbox: bool,
    redis_url: str | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """The people twin NAME has talked to; read or delete what it remembers of them."""
    from twincast_reasoning import Inbox, PeopleMemory
    from twincast_shared.store import StateStore

    settings = _settings(redis_url=redis_url, state_dir=state_dir)
    if redis_url is None:
        running = read_run_file(settings.state_dir)
        if running is None:
            raise click.ClickException("no running twin: start `twincast up` or pass --redis-url")
        settings = _settings(redis_url=running.redis)

    async def run() -> Any:
        store = StateStore.from_url(settings.redis_url)
        try:
            memory = PeopleMemory(store)
            if delete:
                return {"deleted": await memory.forget(name, delete)}
            if show:
                person = await memory.get(name, show)
                if person is None:
                    raise click.ClickException(f"{name} has no memory of {show}")
                return person.model_dump(mode="json")
            if inbox:
                return [p.model_dump(mode="json") for p in await Inbox(store).all(name)]
            return [
                {
                    "guest_id": p.guest_id,
                    "name": p.name,
                    "sessions": len(p.sessions),
                    "last_seen": p.last_seen.isoformat(),
                    "topics": p.top_topics(),
                    "pending_promises": sum(q.status == "pending" for q in p.promises),
                }
                for p in await memory.all(name)
            ]
        finally:
            await store.close()

    result = asyncio.run(run())
    if as_json or not isinstance(result, list):
        click.echo(json.dumps(result, indent=2))
        return
    if not result:
        click.echo("nobody yet")
    for row in result:
        if "guest_id" in row:
            click.echo(
                f"{row['guest_id']}  {row['name'] or '(no name)'}  sessions {row['sessions']}  "
                f"last seen {row['last_seen'][:16]}  topics {', '.join(row['topics'])}  "
                f"promises {row['pending_promises']}"
            )
        else:
            click.echo(f"{row['at'][:16]}  {row['question']}")
