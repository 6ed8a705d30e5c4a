"""A session's speech queue: the reply chunks waiting to be spoken, in order, and what a
stop, a barge-in or a superseding answer drops from it.

Knows nothing of the bus or of synthesis: the handler queues chunks, runs the worker and
publishes what it speaks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from twincast_shared.contract import ReplyChunk
from twincast_tts.engine import Delivery

# Replies cut off by a barge-in, remembered so that their late chunks are not spoken.
CUT_OFF_MEMORY: Final = 32


@dataclass(frozen=True, slots=True)
class Pending:
    chunk: ReplyChunk
    arrived_ns: int


@dataclass
class SpeechQueue:
    pending: deque[Pending] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    delivery: Delivery = field(default_factory=Delivery)
    # Bumped by every stop; a worker or a synthesis from an older generation publishes nothing.
    generation: int = 0
    speaking: str | None = None
    next_seq: dict[str, int] = field(default_factory=dict)
    cut_off: deque[str] = field(default_factory=lambda: deque(maxlen=CUT_OFF_MEMORY))
    # The latest answer to each utterance: a later one (the guest went on after a pause, or
    # the final words differed from the speculative ones) supersedes it.
    answers: dict[str, str] = field(default_factory=dict)

    def supersede(self, utterance: str, reply_id: str) -> None:
        stale = self.answers.get(utterance)
        self.answers[utterance] = reply_id
        while len(self.answers) > CUT_OFF_MEMORY:
            del self.answers[next(iter(self.answers))]
        if stale is None or stale == reply_id:
            return
        self.cut_off.append(stale)
        self.pending = deque(p for p in self.pending if p.chunk.reply_id != stale)
        self.next_seq.pop(stale, None)
        if self.speaking == stale:
            self.generation += 1
            self.speaking = None
            if self.worker is not None:
                self.worker.cancel()
                self.worker = None

    def offer(self, chunk: ReplyChunk, arrived_ns: int) -> bool:
        """Queue the chunk unless its reply was cut off; whether it was queued."""
        if chunk.reply_id in self.cut_off:
            return False
        if chunk.utterance_id is not None:
            self.supersede(chunk.utterance_id, chunk.reply_id)
        self.pending.append(Pending(chunk, arrived_ns))
        return True

    def idle(self) -> bool:
        """No worker is speaking the queue."""
        return self.worker is None or self.worker.done()

    def unheard(self, reply_id: str) -> bool:
        """Nothing of this reply has been published yet."""
        return self.next_seq.get(reply_id, 0) == 0

    def take_seq(self, reply_id: str) -> int:
        """The seq of the reply's next published piece."""
        seq = self.next_seq.get(reply_id, 0)
        self.next_seq[reply_id] = seq + 1
        return seq

    def stop(self) -> None:
        self.generation += 1
        self.cut_off.extend({*self.next_seq, *(p.chunk.reply_id for p in self.pending)})
        if self.speaking is not None:
            self.cut_off.append(self.speaking)
        self.speaking = None
        self.pending.clear()
        self.next_seq.clear()
        if self.worker is not None:
            self.worker.cancel()
            self.worker = None
