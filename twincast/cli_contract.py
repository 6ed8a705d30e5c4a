"""`twincast contract`: the contract and the settings as documents, written or checked."""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

import click
from pydantic_settings import BaseSettings

from twincast.services import SERVICES, spec
from twincast_shared.contract.documents import asyncapi_yaml, events_markdown
from twincast_shared.settings_docs import configuration_markdown, env_example


def _service_settings() -> dict[str, type[BaseSettings]]:
    return {name: spec(name).settings for name in SERVICES}


def generated() -> dict[str, str]:
    """Each generated file, relative to the repository root, with what it must hold."""
    settings = _service_settings()
    return {
        "docs/asyncapi.yaml": asyncapi_yaml(version("twincast")),
        "docs/events.md": events_markdown(),
        "docs/configuration.md": configuration_markdown(settings),
        ".env.example": env_example(settings),
    }


@click.group("contract")
def contract() -> None:
    """The bus contract and the settings, as documents."""


@contract.command("asyncapi")
def asyncapi() -> None:
    """Print the AsyncAPI 3 document of the bus (YAML)."""
    click.echo(asyncapi_yaml(version("twincast")), nl=False)


@contract.command("docs")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="the repository root",
)
@click.option("--check", is_flag=True, help="only say which files are stale; exit 1 if any")
def docs(root: Path, check: bool) -> None:
    """Write docs/asyncapi.yaml, docs/events.md, docs/configuration.md and .env.example."""
    stale = []
    for rel, text in generated().items():
        path = root / rel
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(rel)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for rel in stale:
        click.echo(f"{'stale' if check else 'wrote'}: {rel}")
    if check and stale:
        sys.exit(1)
