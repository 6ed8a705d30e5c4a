"""mood: the guest's words and voice in, their mood out; owner signals in, their energy out."""

from __future__ import annotations

import time
from collections import OrderedDict

from twincast_mood.engine import GuestMood
from twincast_mood.fusion import Estimate
from twincast_mood.owner import NEUTRAL_ENERGY, OwnerState, owner_state
from twincast_mood.settings import MoodSettings
from twincast_mood.text import TextMoodEngine
from twincast_shared.bus import EVERY_REPLICA
from twincast_shared.claims import SessionClaims
from twincast_shared.contract import (
    CONTROL_EVENT,
    GUEST_SAMPLE_RATE,
    SIGNALS_EVENT,
    ControlEvent,
    GuestTextSubmitted,
    InputError,
    MoodEstimated,
    OwnerConsent,
    PcmChunk,
    SessionEnded,
    SignalsEvent,
    UtteranceTranscribed,
)
from twincast_shared.contract import subjects as s
from twincast_shared.moods import fresh_signals, put_guest_mood, store_signal
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec
from twincast_shared.sessions import (
    UnknownSession,
    end_session,
    get_session,
    live_sessions,
)

MAX_SESSIONS = 4_096


class MoodService(BaseService):
    def __init__(self, ctx: ServiceContext[MoodSettings]) -> None:
        self._ctx = ctx
        self._text = TextMoodEngine()
        self._voice = ctx.settings.mood_prosody
        # Every replica sees every session's input; the one holding its claim keeps its mood,
        # so words and voice of one guest meet in one place.
        self._claims = SessionClaims(ctx.store, service="mood")
        self._guests: OrderedDict[str, GuestMood] = OrderedDict()
        self._twins: dict[str, str | None] = {}
        bus = ctx.bus
        mine = self._claims.owns
        bus.on_event(
            s.STT_FINAL, UtteranceTranscribed, self.on_words, queue=EVERY_REPLICA, accept=mine
        )
        bus.on_event(
            s.STT_PARTIAL, UtteranceTranscribed, self.on_words, queue=EVERY_REPLICA, accept=mine
        )
        bus.on_event(s.TEXT_IN, GuestTextSubmitted, self.on_words, queue=EVERY_REPLICA, accept=mine)
        bus.on_audio(
            s.AUDIO_IN,
            self.on_audio,
            expect_rate=GUEST_SAMPLE_RATE,
            queue=EVERY_REPLICA,
            accept=mine,
        )
        bus.on_event(s.CONTROL, CONTROL_EVENT, self.on_control, queue=EVERY_REPLICA)
        bus.on_event(s.SIGNALS, SIGNALS_EVENT, self.on_signal)

    async def close(self) -> None:
        self._guests.clear()

    # The guest

    async def on_words(self, event: UtteranceTranscribed | GuestTextSubmitted) -> None:
        # The owner's own words, while they hold the floor, are not the guest's mood.
        if not event.text.strip():
            return
        if isinstance(event, UtteranceTranscribed) and event.speaker != "guest":
            return
        guest = await self._guest(event.session_id, needs_session=False)
        if isinstance(event, UtteranceTranscribed):
            estimate = guest.read(event.text, key=event.utterance_id, final=event.final)
        else:
            estimate = guest.read(event.text, key=event.event_id)
        if estimate is not None:
            await self._publish_guest(event.session_id, estimate, source=event.event_id)

    async def on_audio(self, session_id: str, chunk: PcmChunk) -> None:
        if chunk.channels != 1:
            raise InputError("guest audio must be mono")
        guest = await self._guest(session_id, needs_session=True)
        estimate = guest.hear(chunk.pcm, last=chunk.last)
        if estimate is not None:
            await self._publish_guest(session_id, estimate, source=None)

    async def _guest(self, session_id: str, *, needs_session: bool) -> GuestMood:
        guest = self._guests.get(session_id)
        if guest is not None:
            self._guests.move_to_end(session_id)
            return guest
        known = session_id in self._twins
        twin = await self._twin_of(session_id)
        if twin is None and needs_session:
            raise InputError(f"unknown session {session_id}: open it before sending audio")
        # Words and audio of a new session may both be here: the first to get here makes it.
        guest = self._guests.get(session_id)
        if guest is not None:
            return guest
        guest = self._guests[session_id] = GuestMood(self._text, voice=self._voice)
        while len(self._guests) > MAX_SESSIONS:
            oldest, _ = self._guests.popitem(last=False)
            self._twins.pop(oldest, None)
        if twin is not None and not known:
            # A session seen for the first time gets the owner's state at once.
            state = await self._owner_state(twin)
            if state.kinds:
                await self._publish_owner(session_id, state)
        return guest

    async def _twin_of(self, session_id: str) -> str | None:
        if session_id not in self._twins:
            try:
                self._twins[session_id] = (await get_session(self._ctx.store, session_id)).twin_id
            except UnknownSession:
                return None
        return self._twins[session_id]

    async def _publish_guest(
        self, session_id: str, estimate: Estimate, *, source: str | None
    ) -> None:
        mood = MoodEstimated(
            session_id=session_id,
            whose="guest",
            valence=estimate.valence,
            arousal=estimate.arousal,
            energy=estimate.energy,
            label=estimate.label,
            confidence=estimate.confidence,
            hurried=estimate.hurried,
            basis=estimate.basis,
            source_event_id=source,
        )
        # Kept for reasoning, which answers on whichever replica gets the question.
        await put_guest_mood(self._ctx.store, mood)
        await self._ctx.bus.publish(mood)
        self._ctx.log.debug("guest mood %s: %s (%.2f)", session_id, mood.label, mood.confidence)

    async def on_control(self, event: ControlEvent) -> None:
        if isinstance(event, SessionEnded):
            self._guests.pop(event.session_id, None)
            twin = self._twins.pop(event.session_id, None) or await self._twin_of(event.session_id)
            self._twins.pop(event.session_id, None)
            if twin is not None:
                await end_session(self._ctx.store, twin, event.session_id)
            await self._claims.release(event.session_id)

    # The owner

    async def on_signal(self, event: SignalsEvent) -> None:
        twin = event.twin_id
        if isinstance(event, OwnerConsent):
            state = await self._owner_state(twin) if event.signals else None
        else:
            if not await store_signal(self._ctx.store, event):
                self._ctx.log.info("owner signal for %s not kept: signals are switched off", twin)
                return
            state = await self._owner_state(twin)
        if state is None or not state.kinds:
            state = OwnerState(NEUTRAL_ENERGY, 0.0, 0.0, "steady", 0.0, ())
        for session_id in await live_sessions(self._ctx.store, twin):
            await self._publish_owner(session_id, state, source=event.event_id)

    async def _owner_state(self, twin: str) -> OwnerState:
        return owner_state(await fresh_signals(self._ctx.store, twin, now=time.time()))

    async def _publish_owner(
        self, session_id: str, state: OwnerState, *, source: str | None = None
    ) -> None:
        await self._ctx.bus.publish(
            MoodEstimated(
                session_id=session_id,
                whose="owner",
                valence=state.valence,
                arousal=state.arousal,
                energy=state.energy,
                label=state.label,
                confidence=state.confidence,
                basis=("signals",) if state.kinds else (),
                source_event_id=source,
            )
        )


SPEC = ServiceSpec(name="mood", settings=MoodSettings, create=MoodService)
