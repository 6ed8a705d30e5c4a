"""`twincast link`: signed join links to the running twin and its owner's console."""

from __future__ import annotations

from pathlib import Path

import click

from twincast.runtime import read_run_file
from twincast_shared.settings import CommonSettings


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
    from twincast_gateway import TokenSigner, load_or_create_secret

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
