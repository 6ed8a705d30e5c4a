"""Live transcription of many sessions on one model. Knows nothing of the bus: it feeds a Sink."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from uuid import uuid4

import numpy as np

from twincast_stt.engine import SAMPLE_RATE, VAD_WINDOW, StreamingVad, SttEngine, Transcript
from twincast_stt.turns import (
    PartialPacer,
    Phase,
    Signal,
    TurnSettings,
    TurnTracker,
    sounds_unfinished,
)

BYTES_PER_SAMPLE = 2


class Sink(Protocol):
    async def speech_started(self, session: str, utterance: str, at_ms: float) -> None: ...

    async def transcript(
        self,
        session: str,
        utterance: str,
        result: Transcript,
        *,
        final: bool,
        speculative: bool = False,
    ) -> None: ...

    async def speech_ended(self, session: str, utterance: str, at_ms: float) -> None: ...


@dataclass(order=True)
class _Job:
    priority: int
    order: int
    session: str
    pcm: bytes
    pad_s: float | None
    future: asyncio.Future[Transcript | None]


class Scheduler:
    """One model, many sessions. End-of-turn transcriptions go before partial ones, and each
    session has at most one partial waiting (a newer one replaces it), so a session that talks
    for a long time cannot starve the others. A partial being transcribed when an end-of-turn
    job comes in is given up after Whisper's encoder, so the end of a turn waits less.
    """

    FINAL = 0
    PARTIAL = 1

    def __init__(self, engine: SttEngine) -> None:
        self._engine = engine
        self._jobs: list[_Job] = []
        self._ready = asyncio.Event()
        self._order = itertools.count()
        self._worker: asyncio.Task[None] | None = None
        self._final_waiting = threading.Event()  # read by the transcribing thread

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="stt:scheduler")

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for job in self._jobs:
            job.future.cancel()
        self._jobs.clear()

    def submit(
        self, session: str, pcm: bytes, *, pad_s: float | None, final: bool
    ) -> asyncio.Future[Transcript | None]:
        future: asyncio.Future[Transcript | None] = asyncio.get_running_loop().create_future()
        if not final:
            for job in self._jobs:
                if job.session == session and job.priority == self.PARTIAL:
                    job.future.set_result(None)
            self._jobs = [j for j in self._jobs if not j.future.done()]
        priority = self.FINAL if final else self.PARTIAL
        self._jobs.append(_Job(priority, next(self._order), session, pcm, pad_s, future))
        self._jobs.sort()
        if final:
            self._final_waiting.set()
        self._ready.set()
        return future

    def withdraw(self, future: asyncio.Future[Transcript | None]) -> bool:
        """Cancel a job that has not started yet; False if it has (it runs to its end)."""
        for job in self._jobs:
            if job.future is future:
                self._jobs.remove(job)
                future.cancel()
                return True
        return False

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            if not self._jobs:
                self._ready.clear()
                continue
            job = self._jobs.pop(0)
            if not any(j.priority == self.FINAL for j in self._jobs):
                self._final_waiting.clear()
            if job.future.done():
                continue
            try:
                result = await asyncio.to_thread(
                    self._engine.transcribe,
                    job.pcm,
                    pad_s=job.pad_s,
                    abandon=self._final_waiting.is_set if job.priority == self.PARTIAL else None,
                )
            except Exception as error:
                if not job.future.done():
                    job.future.set_exception(error)
            else:
                if not job.future.done():
                    job.future.set_result(result)


@dataclass(frozen=True)
class StreamSettings:
    turns: TurnSettings
    final_pad_s: float | None
    partial_pad_s: float
    max_utterance_s: float
    partial_every_s: float = 0.25
    # Speech before the first partial: Whisper hears no word in less (measured on our recordings).
    first_partial_s: float = 0.2


class SessionStream:
    """One session's audio: VAD, turn tracking, partial and final transcripts, in order."""

    def __init__(
        self,
        session: str,
        *,
        engine: SttEngine,
        scheduler: Scheduler,
        settings: StreamSettings,
        sink: Sink,
        spawn: Callable[[Awaitable[None]], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if engine.vad is None:
            raise RuntimeError("VAD model not loaded")
        self.session = session
        self._scheduler = scheduler
        self._settings = settings
        self._sink = sink
        self._spawn = spawn
        self._clock = clock
        self._vad = StreamingVad(engine.vad)
        self.tracker = TurnTracker(settings.turns)
        self.pacer = PartialPacer(
            every_s=settings.partial_every_s, min_speech_s=settings.first_partial_s
        )
        # Audio from (speech onset - preroll) on; while idle, only the last preroll.
        self._audio = bytearray()
        self._audio_start = 0
        self._samples = 0
        self._preroll = int(settings.turns.preroll_ms * SAMPLE_RATE / 1000)
        self.utterance: str | None = None
        self._speculative: asyncio.Future[Transcript | None] | None = None
        self._speculative_until = 0
        self._speculative_out: asyncio.Event | None = None
        self._finals_since_end_of_stream = 0

    @property
    def _max_bytes(self) -> int:
        return int(self._settings.max_utterance_s * SAMPLE_RATE) * BYTES_PER_SAMPLE

    async def feed(self, pcm: bytes, *, last: bool) -> None:
        self._audio += pcm
        self._samples += len(pcm) // BYTES_PER_SAMPLE
        floats = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        for prob in self._vad.feed(floats):
            for signal in self.tracker.feed(prob):
                await self._on(signal.kind, signal.at_window)
        if (
            self.utterance is not None
            and self.tracker.phase is Phase.SPEECH
            and self.pacer.due(self._clock())
        ):
            self._partial(self.utterance, bytes(self._audio))
        if self.tracker.phase is Phase.IDLE:
            self._trim_to(self._samples - self._preroll)
        elif len(self._audio) >= self._max_bytes:
            await self._finish(at_sample=self._samples)
        if last:
            await self._finish(at_sample=self._samples, forced=True)

    def _trim_to(self, sample: int) -> None:
        if sample > self._audio_start:
            drop = (sample - self._audio_start) * BYTES_PER_SAMPLE
            del self._audio[:drop]
            self._audio_start = sample

    def _until(self, window: int) -> bytes:
        end = (window + 1) * VAD_WINDOW - self._audio_start
        return bytes(self._audio[: max(0, end) * BYTES_PER_SAMPLE])

    async def _on(self, kind: Signal, window: int) -> None:
        if kind is Signal.STARTED:
            onset = window * VAD_WINDOW
            self._trim_to(onset - self._preroll)
            self.utterance = uuid4().hex
            self.pacer.restart(self._clock() - (self._samples - onset) / SAMPLE_RATE)
            await self._sink.speech_started(
                self.session, self.utterance, 1000 * onset / SAMPLE_RATE
            )
        elif kind is Signal.SILENCE and self.utterance is not None:
            self._speculative = self._scheduler.submit(
                self.session, self._until(window), pad_s=self._settings.final_pad_s, final=True
            )
            self._speculative_until = window
            # The words so far, whether the turn ends here or goes on: out as a speculative
            # transcript, so that the answer can be ready when the silence makes it a turn.
            self._speculative_out = self._publish_partial(
                self.utterance, self._speculative, typical=False, speculative=True
            )
        elif kind is Signal.RESUMED:
            if self._speculative is not None:
                self._scheduler.withdraw(self._speculative)
            self._speculative = None
        elif kind is Signal.END_DUE and self._speculative is not None:
            result = await self._speculative
            await self._speculative_published()
            text = result.text if result else ""
            turns = self._settings.turns
            if sounds_unfinished(text) and self.tracker.hold_ms < turns.hesitation_ms:
                self.tracker.hold_ms = turns.hesitation_ms
                return
            if self.tracker.speech_ms() < turns.min_speech_ms and not text:
                await self._close(None, at_sample=self._speculative_until * VAD_WINDOW)
                return
            await self._close(result, at_sample=self.tracker.silence_window * VAD_WINDOW)

    async def _speculative_published(self) -> None:
        """The speculative transcript goes out before the final one, never after it."""
        if self._speculative_out is not None:
            await self._speculative_out.wait()

    def _partial(self, utterance: str, pcm: bytes) -> None:
        future = self._scheduler.submit(
            self.session, pcm, pad_s=self._settings.partial_pad_s, final=False
        )
        self._publish_partial(utterance, future, typical=True)

    def _publish_partial(
        self,
        utterance: str,
        future: asyncio.Future[Transcript | None],
        *,
        typical: bool,
        speculative: bool = False,
    ) -> asyncio.Event:
        """Publishes the transcript when it is ready; the event is set once that is done."""
        token = self.pacer.started(self._clock())
        out = asyncio.Event()

        async def publish() -> None:
            published = False
            try:
                await asyncio.wait([future])
                result = (
                    None
                    if future.cancelled() or future.exception() is not None
                    else future.result()
                )
                if result is not None and result.text and self.utterance == utterance:
                    published = True
                    await self._sink.transcript(
                        self.session, utterance, result, final=False, speculative=speculative
                    )
            finally:
                self.pacer.finished(token, self._clock(), published=published, typical=typical)
                out.set()

        self._spawn(publish())
        return out

    async def _finish(self, *, at_sample: int, forced: bool = False) -> None:
        """End the current utterance now (end of stream, or the utterance grew too long)."""
        if self.utterance is None:
            if forced and not self._finals_since_end_of_stream:
                # The stream ended without a word: say so, rather than leave the sender waiting.
                empty = Transcript(text="", audio_ms=0.0, compute_ms=0.0, context_s=0.0)
                await self._sink.transcript(self.session, uuid4().hex, empty, final=True)
            self._finals_since_end_of_stream = 0
            return
        if self.tracker.phase is Phase.TRAILING and self._speculative is not None:
            result = await self._speculative
            await self._speculative_published()
            at_sample = self.tracker.silence_window * VAD_WINDOW
        else:
            result = await self._scheduler.submit(
                self.session, bytes(self._audio), pad_s=self._settings.final_pad_s, final=True
            )
        await self._close(result, at_sample=at_sample)
        if forced:
            self._finals_since_end_of_stream = 0

    async def _close(self, result: Transcript | None, *, at_sample: int) -> None:
        utterance = self.utterance
        self.utterance = None
        self._speculative = None
        self.tracker.reset()
        self._trim_to(self._samples - self._preroll)
        if utterance is None:
            return
        final = result or Transcript(text="", audio_ms=0.0, compute_ms=0.0, context_s=0.0)
        self._finals_since_end_of_stream += 1
        await self._sink.transcript(self.session, utterance, final, final=True)
        await self._sink.speech_ended(self.session, utterance, 1000 * at_sample / SAMPLE_RATE)
