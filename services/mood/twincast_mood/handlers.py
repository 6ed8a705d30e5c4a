"""mood: the guest's words in, the conversation's mood out."""

from __future__ import annotations

from twincast_mood.engine import TextMoodEngine
from twincast_mood.settings import MoodSettings
from twincast_shared.contract import GuestTextSubmitted, MoodEstimated, UtteranceTranscribed
from twincast_shared.contract import subjects as s
from twincast_shared.service import BaseService, ServiceContext, ServiceSpec


class MoodService(BaseService):
    def __init__(self, ctx: ServiceContext[MoodSettings]) -> None:
        self._ctx = ctx
        self._engine = TextMoodEngine()
        ctx.bus.on_event(s.STT_FINAL, UtteranceTranscribed, self.on_words)
        ctx.bus.on_event(s.TEXT_IN, GuestTextSubmitted, self.on_words)

    async def on_words(self, event: UtteranceTranscribed | GuestTextSubmitted) -> None:
        if not event.text.strip():
            return
        mood = self._engine.estimate(event.text)
        await self._ctx.bus.publish(
            MoodEstimated(
                session_id=event.session_id,
                whose="guest",
                valence=mood.valence,
                arousal=mood.arousal,
                energy=mood.energy,
                label=mood.label,
                source_event_id=event.event_id,
            )
        )


SPEC = ServiceSpec(name="mood", settings=MoodSettings, create=MoodService)
