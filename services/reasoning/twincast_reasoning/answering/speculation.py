"""Answers composed for a guest's speculative transcripts, kept until the turn ends.

Knows nothing of the bus or the store: an entry per (session, utterance), the words it
answered, and the answer once it was sent.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from twincast_reasoning.answering.engine import Composed

MAX_SPECULATIONS = 256
SPECULATION_GRACE_S = 0.1

Key = tuple[str, str]
"""(session id, utterance id)"""


@dataclass
class Speculation:
    """A reply composed for a speculative transcript and sent provisionally."""

    text: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sent: Composed | None = None


class Speculations:
    def __init__(self) -> None:
        self._by_key: OrderedDict[Key, Speculation] = OrderedDict()

    def begin(self, key: Key, text: str) -> Speculation | None:
        """A new speculation on these words; None when they are being answered already."""
        speculation = self._by_key.get(key)
        if speculation is not None and speculation.text == text:
            return None
        speculation = self._by_key[key] = Speculation(text)
        while len(self._by_key) > MAX_SPECULATIONS:
            self._by_key.popitem(last=False)
        return speculation

    async def take(self, key: Key, text: str) -> Speculation | None:
        """The speculation on exactly these words, if there is one.

        The guest may have paused more than once in the utterance: the speculation on their
        last pause is sent just before the final transcript, and may still be on its way in.
        """
        deadline = time.monotonic() + SPECULATION_GRACE_S
        while (speculation := self._by_key.get(key)) is not None:
            if speculation.text == text:
                return self._by_key.pop(key)
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.005)
        self._by_key.pop(key, None)
        return None
