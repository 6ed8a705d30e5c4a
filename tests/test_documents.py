"""The generated documents are what the code generates, and the AsyncAPI document holds together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from twincast.cli_contract import generated
from twincast_shared.contract import subjects as s
from twincast_shared.contract.catalog import CHANNELS
from twincast_shared.contract.documents import asyncapi_document

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rel", sorted(generated()))
def test_the_committed_file_is_what_the_code_generates(rel: str) -> None:
    committed = (ROOT / rel).read_text(encoding="utf-8")
    assert committed == generated()[rel], (
        f"{rel} is stale: run `uv run twincast contract docs` and commit the result"
    )


def test_every_subject_family_has_one_channel() -> None:
    families = [channel.family for channel in CHANNELS]
    assert sorted(f.stem for f in families) == sorted(f.stem for f in s.ALL_SUBJECTS)
    assert len(set(families)) == len(families)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_reference_in_the_asyncapi_document_resolves() -> None:
    doc = yaml.safe_load(generated()["docs/asyncapi.yaml"])
    assert doc["asyncapi"].startswith("3.")
    refs = _refs(doc)
    assert refs
    for ref in refs:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"{ref} does not resolve"
            node = node[part]


def test_each_channel_address_names_its_parameter() -> None:
    doc = asyncapi_document("0")
    for channel in doc["channels"].values():
        (param,) = channel["parameters"]
        assert channel["address"].endswith("{" + param + "}")


def test_a_contract_change_shows_in_the_document() -> None:
    doc = asyncapi_document("0")
    reply = doc["components"]["schemas"]["ReplyChunk"]
    assert "citations" in reply["properties"]
    assert reply["additionalProperties"] is False
