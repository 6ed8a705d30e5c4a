"""`twincast audit`: every word spoken in a session, and who held the floor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from twincast.runtime import read_run_file
from twincast_shared.bus import read_audit
from twincast_shared.contract import AuditRecord
from twincast_shared.contract.subjects import is_valid_token
from twincast_shared.settings import CommonSettings


@click.command()
@click.argument("session")
@click.option("--nats-url", help="default: the running twin's")
@click.option("--state-dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="one JSON record per line")
def audit(session: str, nats_url: str | None, state_dir: Path | None, as_json: bool) -> None:
    """Print the audit of SESSION: what the twin and the owner said, with sources."""
    if not is_valid_token(session):
        raise click.BadParameter("not a session id", param_hint="SESSION")
    if nats_url is None:
        settings = CommonSettings(state_dir=state_dir) if state_dir else CommonSettings()
        running = read_run_file(settings.state_dir)
        if running is None:
            raise click.ClickException("no running twin found: give --nats-url")
        nats_url = running.nats
    try:
        records = asyncio.run(read_audit(nats_url, session))
    except Exception as error:
        raise click.ClickException(f"audit not readable: {error}") from None
    if not records:
        raise click.ClickException(f"no audit for session {session}")
    for record in records:
        click.echo(record.model_dump_json() if as_json else describe(record))


def describe(record: AuditRecord) -> str:
    when = record.ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    who: str = record.speaker
    if record.speaker == "twin" and record.author == "owner":
        who = "twin (owner's words)"
    line = f"{when}  {record.kind:<7} {who:<20} {record.text}"
    if record.citations:
        line += "  [" + "; ".join(c.title for c in record.citations) + "]"
    if record.guest_id:
        line += f"  (guest {record.guest_id})"
    return line
