"""The contract as documents: an AsyncAPI 3 document and the events page, from `catalog`."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from twincast_shared.contract import audio
from twincast_shared.contract.catalog import CHANNELS, PCM, Channel

ASYNCAPI_VERSION = "3.0.0"
_REF = "#/components/schemas/{model}"

_PCM_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": [audio.H_FORMAT, audio.H_RATE, audio.H_SEQ, audio.H_STREAM],
    "properties": {
        audio.H_FORMAT: {"const": audio.FORMAT},
        audio.H_RATE: {"type": "string", "description": "samples per second"},
        audio.H_CHANNELS: {"type": "string", "default": "1"},
        audio.H_SEQ: {"type": "string", "description": "chunk number within the stream"},
        audio.H_STREAM: {"type": "string", "description": "the utterance or reply id"},
        audio.H_CAPTURE_NS: {"type": "string", "description": "capture time, monotonic ns"},
        audio.H_LAST: {"enum": ["0", "1"], "description": "1 closes the stream"},
    },
}


def _channel_id(channel: Channel) -> str:
    head, *rest = channel.family.stem.split(".")
    return head + "".join(part.capitalize() for part in rest)


def _models() -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}
    for channel in CHANNELS:
        if channel.messages != PCM:
            for model in channel.messages:
                seen.setdefault(model.__name__, model)
    return list(seen.values())


def asyncapi_document(version: str) -> dict[str, Any]:
    """The bus as AsyncAPI 3: one channel per subject family, one send operation each."""
    models = _models()
    keyed, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas: dict[str, Any] = dict(sorted(top.get("$defs", {}).items()))
    messages: dict[str, Any] = {
        "PcmChunk": {
            "name": "PcmChunk",
            "contentType": "application/octet-stream",
            "summary": "Raw signed 16-bit little-endian PCM; the metadata rides in headers.",
            "headers": _PCM_HEADERS,
            "payload": {"type": "string", "format": "binary"},
        }
    }
    for model in models:
        ref = keyed[(model, "validation")]
        messages[model.__name__] = {
            "name": model.__name__,
            "contentType": "application/json",
            "summary": (model.__doc__ or model.__name__).strip().splitlines()[0],
            "payload": ref,
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel in CHANNELS:
        cid = _channel_id(channel)
        names = ["PcmChunk"] if channel.messages == PCM else [m.__name__ for m in channel.messages]
        body: dict[str, Any] = {
            "address": channel.address,
            "description": channel.summary,
            "parameters": {channel.key: {"description": f"the {channel.key} id (a token)"}},
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
        }
        if channel.stream is not None:
            body["x-jetstream"] = {
                "stream": channel.stream.name,
                "max_age_s": channel.stream.max_age_s,
            }
        channels[cid] = body
        operations[f"send_{cid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"{channel.producers} → {channel.consumers}",
            **(
                {"reply": {"channel": {"$ref": f"#/channels/{cid}"}}}
                if channel.request_reply
                else {}
            ),
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "TwinCast bus",
            "version": version,
            "description": "Every NATS subject TwinCast uses, with the events it carries. "
            "Generated from twincast_shared.contract by `twincast contract asyncapi`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "the nats-server `twincast up` starts",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def asyncapi_yaml(version: str) -> str:
    return yaml.safe_dump(
        asyncapi_document(version), sort_keys=False, allow_unicode=True, width=100
    )


def events_markdown() -> str:
    """The subjects table of `docs/events.md`."""
    rows = [
        "# Events on the bus",
        "",
        "Generated from `twincast_shared/contract/catalog.py` by `twincast contract docs`;"
        " a test fails when this page is not what the code generates. The same contract as"
        " AsyncAPI 3: [asyncapi.yaml](asyncapi.yaml).",
        "",
        "| subject | events | producers → consumers | what |",
        "|---|---|---|---|",
    ]
    for channel in CHANNELS:
        if channel.messages == PCM:
            names = "PCM16 bytes + `tc-*` headers"
        elif channel.request_reply:
            names = "request/reply"
        else:
            names = ", ".join(f"`{m.__name__}`" for m in channel.messages)
        kept = f" Kept in JetStream `{channel.stream.name}`." if channel.stream else ""
        rows.append(
            f"| `{channel.address}` | {names} | {channel.producers} → {channel.consumers} "
            f"| {channel.summary}{kept} |"
        )
    rows += [
        "",
        "Every event is a pydantic model: frozen, extra fields forbidden, a `type` tag,"
        " `session_id`, `event_id`, `ts` and `schema_version`. Anything that fails validation"
        " becomes a `Rejected` event on `twincast.rejected.<service>`.",
        "",
    ]
    return "\n".join(rows)
