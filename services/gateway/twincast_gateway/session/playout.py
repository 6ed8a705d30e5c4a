"""What of a session's replies is heard, and when: the reply-playout state machine.

Replies come from the bus as three streams that share a reply id: the text (`ReplyChunk`),
the voice (`PcmChunk`, `stream` = reply id) and the mouth (`VisemeTrack`). A provisional
reply answers a speculative transcript and is held, silent, until its utterance ends; an
answer cut off (a barge-in, the owner's takeover, another final answer) is cancelled, and
whatever of it arrives later is dropped. Voice and mouth of one chunk meet here: whichever
comes second is animated at the sample where the voice was placed.

Pure: no clock, no asyncio, no media. The session asks, does what it is told, and says where
it placed each chunk. Every collection has a cap, so a session that runs for hours, or a bus
that never sends the other half of a chunk, holds a bounded amount.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from twincast_shared.contract import PcmChunk, ReplyChunk, VisemeTrack

K = TypeVar("K")
V = TypeVar("V")

Held = ReplyChunk | VisemeTrack | PcmChunk
ReplyVerdict = Literal["drop", "hold", "show", "cut_and_show"]
ItemVerdict = Literal["drop", "hold", "play"]
VisemeVerdict = Literal["drop", "hold", "wait"] | int
ChunkKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PlayoutLimits:
    replies: int = 256  # reply ids remembered as heard, or as cancelled
    utterances: int = 64  # utterances remembered as ended, or as answered provisionally
    chunks: int = 512  # voice chunks waiting for their mouth, and mouths for their voice
    held_replies: int = 8
    held_items: int = 4_096  # per held reply


class _Recent(Generic[K, V]):
    """A dict that forgets its oldest entries past `cap`."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._items: OrderedDict[K, V] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._cap:
            self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def snapshot(self) -> list[K]:
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()


class _RecentSet(Generic[K]):
    def __init__(self, cap: int) -> None:
        self._items: _Recent[K, None] = _Recent(cap)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def add(self, key: K) -> None:
        self._items.put(key, None)

    def discard(self, key: K) -> None:
        self._items.pop(key)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items.snapshot())

    def clear(self) -> None:
        self._items.clear()


@dataclass
class _HeldReply:
    utterance: str
    items: list[Held] = field(default_factory=list)


class Playout:
    """One session's replies: which are held, heard or cancelled, and where each chunk went."""

    def __init__(self, limits: PlayoutLimits | None = None) -> None:
        self.limits = limits = limits or PlayoutLimits()
        self._heard: _RecentSet[str] = _RecentSet(limits.replies)
        self._cancelled: _RecentSet[str] = _RecentSet(limits.replies)
        self._held: _Recent[str, _HeldReply] = _Recent(limits.held_replies)
        self._released: _Recent[str, str] = _Recent(limits.utterances)  # utterance → reply
        self._ended: _RecentSet[str] = _RecentSet(limits.utterances)
        self._placed: _Recent[ChunkKey, int] = _Recent(limits.chunks)
        self._waiting: _Recent[ChunkKey, VisemeTrack] = _Recent(limits.chunks)

    # What arrives

    def reply(self, chunk: ReplyChunk, *, floor_held: bool = False) -> ReplyVerdict:
        """A sentence of text. "cut_and_show": stop what plays now (a provisional answer that
        lost to another final one), then show this one."""
        if chunk.reply_id in self._cancelled:
            return "drop"
        if floor_held and chunk.author == "twin":
            # An answer that crossed the owner's takeover on its way: the owner has the floor.
            self._cancelled.add(chunk.reply_id)
            return "drop"
        utterance = chunk.utterance_id
        if chunk.provisional and utterance is not None and utterance not in self._ended:
            held = self._held.get(chunk.reply_id)
            if held is None:
                # A newer speculation (the guest went on after a pause) replaces the older.
                self._drop_held(utterance)
                held = _HeldReply(utterance)
                self._hold(chunk.reply_id, held)
            return "hold" if self._add(chunk.reply_id, held, chunk) else "drop"
        verdict: ReplyVerdict = "show"
        if not chunk.provisional and utterance is not None:
            # The turn ended with other words than the speculative ones: that answer goes,
            # even if it had started to play.
            self._drop_held(utterance)
            released = self._released.pop(utterance)
            if released is not None and released != chunk.reply_id:
                self._cancelled.add(released)
                self._heard.discard(released)
                verdict = "cut_and_show"
        self._heard.add(chunk.reply_id)
        return verdict

    def speech(self, chunk: PcmChunk) -> ItemVerdict:
        """A piece of a reply's voice. After "play", say where it went with `placed`."""
        if chunk.stream in self._cancelled or not (chunk.pcm or chunk.last):
            return "drop"
        if (held := self._held.get(chunk.stream)) is not None:
            return "hold" if self._add(chunk.stream, held, chunk) else "drop"
        self._heard.add(chunk.stream)
        return "play"

    def placed(self, chunk: PcmChunk, start: int) -> VisemeTrack | None:
        """The voice chunk was queued at sample `start`; its mouth, if that came first."""
        key = (chunk.stream, chunk.seq)
        track = self._waiting.pop(key)
        if track is None:
            self._placed.put(key, start)
        return track

    def visemes(self, track: VisemeTrack) -> VisemeVerdict:
        """A chunk's mouth shapes: the sample where its voice starts, or "wait" (kept here
        until `placed` hands it back with its voice), "hold" or "drop"."""
        if track.reply_id in self._cancelled:
            return "drop"
        if (held := self._held.get(track.reply_id)) is not None:
            return "hold" if self._add(track.reply_id, held, track) else "drop"
        key = (track.reply_id, track.seq)
        start = self._placed.pop(key)
        if start is None:
            self._waiting.put(key, track)
            return "wait"
        return start

    def speech_ended(self, utterance: str) -> list[Held]:
        """The turn is over: a provisional answer to it is heard now, in the order it came."""
        self._ended.add(utterance)
        released: list[Held] = []
        for reply_id in self._held.snapshot():
            held = self._held.get(reply_id)
            if held is None or held.utterance != utterance:
                continue
            self._held.pop(reply_id)
            self._released.put(utterance, reply_id)
            released.extend(held.items)
        return released

    # What the session decides

    def cancel_heard(self) -> None:
        """Two people talking (the guest over the owner): what the twin had said is cut."""
        for reply_id in self._heard:
            self._cancelled.add(reply_id)

    def cut(self) -> None:
        """Barge-in or takeover: every reply heard or held so far is cancelled."""
        for reply_id in [*self._heard, *self._held.snapshot()]:
            self._cancelled.add(reply_id)
        self._heard.clear()
        self._held.clear()
        self._waiting.clear()
        self._placed.clear()

    # Looking in

    def is_cancelled(self, reply_id: str) -> bool:
        return reply_id in self._cancelled

    def is_held(self, reply_id: str) -> bool:
        return reply_id in self._held

    @property
    def sizes(self) -> dict[str, int]:
        """How much is kept now, collection by collection (each below its cap)."""
        return {
            "heard": len(self._heard),
            "cancelled": len(self._cancelled),
            "held": len(self._held),
            "released": len(self._released),
            "ended": len(self._ended),
            "placed": len(self._placed),
            "waiting": len(self._waiting),
        }

    def _hold(self, reply_id: str, held: _HeldReply) -> None:
        if len(self._held) >= self.limits.held_replies:
            oldest = self._held.snapshot()[0]
            self._held.pop(oldest)
            self._cancelled.add(oldest)
        self._held.put(reply_id, held)

    def _add(self, reply_id: str, held: _HeldReply, item: Held) -> bool:
        if len(held.items) >= self.limits.held_items:
            # Longer than any answer: it is dropped whole rather than heard in part.
            self._held.pop(reply_id)
            self._cancelled.add(reply_id)
            return False
        held.items.append(item)
        return True

    def _drop_held(self, utterance: str) -> None:
        for reply_id in self._held.snapshot():
            held = self._held.get(reply_id)
            if held is not None and held.utterance == utterance:
                self._held.pop(reply_id)
                self._cancelled.add(reply_id)
