"""The data-channel messages: the JSON the pages read, and clear refusals of bad input."""

from __future__ import annotations

import json

import pytest

from twincast_shared.contract import Citation
from twincast_shared.contract.datachannel import (
    Floor,
    MessageError,
    Reply,
    TextMessage,
    parse_message,
    parse_page_message,
)


def test_a_reply_is_the_json_the_pages_read() -> None:
    cited = Citation(source_id="s1", title="Roofs", date="2024-05-01")
    message = Reply(
        reply_id="r1",
        seq=0,
        text="Forty species.",
        final=True,
        deferred=False,
        author="twin",
        citations=(cited,),
    )
    assert json.loads(message.to_json()) == {
        "type": "reply",
        "reply_id": "r1",
        "seq": 0,
        "text": "Forty species.",
        "final": True,
        "deferred": False,
        "author": "twin",
        "citations": [{"source_id": "s1", "title": "Roofs", "date": "2024-05-01"}],
    }
    assert parse_message(message.to_json()) == message


def test_the_floor_says_either_its_console_or_why_it_came_back() -> None:
    assert json.loads(Floor(holder="owner", console="c1").to_json()) == {
        "type": "floor",
        "holder": "owner",
        "console": "c1",
    }
    assert json.loads(Floor(holder="twin", reason="expired").to_json()) == {
        "type": "floor",
        "holder": "twin",
        "reason": "expired",
    }
    with pytest.raises(ValueError, match="console"):
        Floor(holder="owner")


def test_a_page_may_send_a_question() -> None:
    assert parse_page_message('{"type": "text", "text": "hi"}') == TextMessage(text="hi")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", '"type"'),
        ('{"type": "hello", "session_id": "s", "twin": "t"}', 'expected {"type": "text"'),
        ('{"type": "text"}', "text: Field required"),
        ('{"type": "text", "text": "hi", "extra": 1}', "extra"),
        ('{"type": "text", "text": "' + "x" * 9000 + '"}', "8 KiB"),
    ],
)
def test_what_a_page_may_not_send_is_refused_clearly(raw: str, says: str) -> None:
    with pytest.raises(MessageError) as refused:
        parse_page_message(raw)
    assert says in str(refused.value)


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(MessageError) as refused:
        parse_message('{"type": "shout"}')
    assert "'reply'" in str(refused.value)
