"""One live session at the gateway: its peers, its media, its captions. Knows nothing of NATS.

Which replies are heard is `Playout`'s to decide; the connections are `Peers`'; this joins
them to the media (voice out, face out, the guest's and the owner's voices in).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import av
from aiortc import RTCConfiguration, RTCDataChannel, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from twincast_gateway.session.media import (
    SAMPLE_RATE,
    AvatarVideoTrack,
    GuestAudioPump,
    MediaClock,
    SpeechOut,
    StreamResampler,
    TwinAudioTrack,
    set_audio_prefetch,
)
from twincast_gateway.session.owner_voice import OWNER_FRAME_S, OwnerVoicePump, viseme_for
from twincast_gateway.session.peers import Peer, PeerRole, Peers, send
from twincast_gateway.session.playout import Playout
from twincast_gateway.session.uplink import BargeInGuard
from twincast_shared.contract import (
    GUEST_SAMPLE_RATE,
    AnimationFrame,
    AuditRecord,
    GuestTextSubmitted,
    MoodEstimated,
    PcmChunk,
    ReplyChunk,
    ReplyDrafted,
    UtteranceTranscribed,
    VisemeTrack,
)
from twincast_shared.contract.datachannel import (
    MAX_MESSAGE_BYTES,
    Caption,
    Draft,
    ErrorMessage,
    Floor,
    Hello,
    Interrupted,
    MessageError,
    Mood,
    Reply,
    Speaking,
    ToPage,
    parse_page_message,
    to_page,
)
from twincast_shared.floor import Holding
from twincast_shared.sessions import SessionInfo
from twincast_shared.tasks import TaskOwner

log = logging.getLogger(__name__)

__all__ = ["Face", "LiveSession", "PeerRole", "SessionStats", "SignallingError", "Speaker"]

Speaker = Literal["twin", "owner"]
MAX_SDP_BYTES = 64 * 1024
MAX_GUEST_MESSAGE = MAX_MESSAGE_BYTES
UPLINK_PREFETCH = 0
OWNER_MAX_LEAD = 3 * SAMPLE_RATE // 50  # 60 ms of the owner's voice waiting to be sent


class SignallingError(ValueError):
    """An offer the gateway cannot answer; the message is safe to show the caller."""


class Face(Protocol):
    """The avatar: timing of the face (visemes, blinks, mood) and drawing it."""

    def speak(
        self,
        visemes: Sequence[tuple[str, float, float]],
        *,
        start_s: float,
        speaker: Speaker = "twin",
    ) -> None: ...
    def flush(self, at_s: float) -> None: ...
    def hold(self, at_s: float) -> None: ...
    def resume(self, shift_s: float) -> None: ...
    def set_mood(self, *, label: str, valence: float, arousal: float) -> None: ...
    def set_energy(self, energy: float) -> None: ...
    def express(self, expression: str) -> None: ...
    def frame(
        self, t: float, pts: int, *, session_id: str
    ) -> tuple[av.VideoFrame, AnimationFrame]: ...


@dataclass
class SessionStats:
    """When each reply first sounded and when barge-ins flushed speech (time.monotonic)."""

    first_sound: dict[str, float] = field(default_factory=dict)
    flushed_at: list[float] = field(default_factory=list)


class LiveSession:
    def __init__(
        self,
        *,
        info: SessionInfo,
        face: Face,
        fps: int,
        rtc: RTCConfiguration,
        publish_audio: Callable[[PcmChunk], Awaitable[None]],
        publish_text: Callable[[GuestTextSubmitted], Awaitable[None]],
        publish_animation: Callable[[AnimationFrame], Coroutine[Any, Any, None]],
        on_empty: Callable[[LiveSession], Awaitable[None]],
        publish_owner_audio: Callable[[PcmChunk], Awaitable[None]] | None = None,
        publish_audit: Callable[[AuditRecord], Awaitable[None]] | None = None,
    ) -> None:
        self.info = info
        self.id = info.session_id
        self._face = face
        self._rtc = rtc
        self._publish_audio = publish_audio
        self._publish_text = publish_text
        self._publish_animation = publish_animation
        self._on_empty = on_empty
        self._publish_owner_audio = publish_owner_audio
        self._publish_audit = publish_audit
        # The owner's console holding the floor, if one does: its voice replaces the twin's.
        self.floor: Holding | None = None
        self._guest_voice: MediaStreamTrack | None = None
        self._owner_seq = 0
        self.clock = MediaClock()
        self.speech = SpeechOut(clock=self.clock)
        self.stats = SessionStats()
        self._audio = TwinAudioTrack(clock=self.clock, speech=self.speech, on_sound=self._sounded)
        self._video = AvatarVideoTrack(clock=self.clock, fps=fps, source=self._frame)
        self.barge = BargeInGuard(
            speech=self.speech, face=face, notify=lambda m: self._broadcast(to_page(m))
        )
        self._relay = MediaRelay()
        self._peers = Peers(rtc, on_gone=self._gone)
        self._tasks = TaskOwner(f"session {self.id}")
        self.playout = Playout()
        self._resample = StreamResampler()
        self._closed = False

    @property
    def peers(self) -> int:
        return len(self._peers)

    # Signalling

    async def connect(self, offer_sdp: str, *, role: PeerRole) -> tuple[str, str]:
        """Answers an offer; returns (peer id, answer SDP). Bad SDP leaves nothing behind."""
        if self._closed:
            raise SignallingError("session has ended")
        if not offer_sdp or len(offer_sdp.encode()) > MAX_SDP_BYTES:
            raise SignallingError("SDP offer is empty or larger than 64 KiB")
        if not offer_sdp.lstrip().startswith("v=0"):
            raise SignallingError("SDP offer must start with v=0")
        peer = self._peers.open(role)
        peer_id, pc = peer.id, peer.pc
        try:
            self._wire(peer)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except Exception as error:  # aiortc raises many types for malformed SDP
                raise SignallingError(f"SDP offer not understood: {error}") from error
            set_audio_prefetch(pc, UPLINK_PREFETCH)
            kinds = {t.kind for t in pc.getTransceivers()}
            if role == "ingest":
                if "audio" not in kinds:
                    raise SignallingError("a WHIP offer must send audio")
            else:
                if "video" not in kinds and "audio" not in kinds:
                    raise SignallingError("the offer has no audio or video to receive")
                if "audio" in kinds:
                    pc.addTrack(self._relay.subscribe(self._audio))
                if role == "owner" and self._guest_voice is not None:
                    # The owner's console hears the guest on its second audio line.
                    pc.addTrack(self._relay.subscribe(self._guest_voice))
                if "video" in kinds:
                    pc.addTrack(self._relay.subscribe(self._video, buffered=False))
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except BaseException:
            await self._peers.drop(peer_id, notify=False)
            raise
        return peer_id, pc.localDescription.sdp

    def has_peer(self, peer_id: str, *, role: PeerRole | None = None) -> bool:
        peer = self._peers.get(peer_id)
        return peer is not None and (role is None or peer.role == role)

    @property
    def guests(self) -> int:
        return sum(peer.role != "owner" for peer in self._peers)

    async def hang_up(self, peer_id: str) -> None:
        await self._peers.drop(peer_id, notify=True)

    def _wire(self, peer: Peer) -> None:
        pc, peer_id = peer.pc, peer.id

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind != "audio" or peer.role == "viewer":
                return
            if peer.role == "owner":
                voice = OwnerVoicePump(
                    track=track,
                    on_frame=lambda out, stt: self._owner_voice(peer_id, out, stt),
                )
                self._tasks.spawn(voice.run(), name=f"owner audio {peer_id}")
                return
            if self._guest_voice is None:
                # The first guest's voice is the one consoles hear, until that guest goes.
                self._guest_voice = track
                track.on("ended", lambda: self._guest_voice_ended(track))
                track = self._relay.subscribe(track)
            pump = GuestAudioPump(
                track=track,
                stream=peer_id,
                publish=self._publish_audio,
                hear=self.barge.listener(peer_id),
            )
            self._tasks.spawn(pump.run(), name=f"guest audio {peer_id}")

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == "animation":
                peer.animation.append(channel)
            elif channel.label == "events":
                peer.events.append(channel)
                channel.on("open", lambda: self._hello(channel))
                if channel.readyState == "open":
                    self._hello(channel)

                @channel.on("message")
                def on_message(message: str | bytes) -> None:
                    self._tasks.spawn(self._guest_message(channel, message), name="guest message")

    def _hello(self, channel: RTCDataChannel) -> None:
        send(channel, Hello(session_id=self.id, twin=self.info.twin_id))

    async def _guest_message(self, channel: RTCDataChannel, message: str | bytes) -> None:
        try:
            text = parse_page_message(message, limit=MAX_GUEST_MESSAGE)
            event = GuestTextSubmitted(session_id=self.id, text=text.text)
        except (MessageError, ValueError) as error:
            send(channel, ErrorMessage(error=f"message refused: {error}"[:300]))
            return
        await self._publish_text(event)

    def _guest_voice_ended(self, track: MediaStreamTrack) -> None:
        if self._guest_voice is track:
            self._guest_voice = None

    async def _gone(self, peer: Peer, notify: bool) -> None:
        self.barge.forget(peer.id)
        # A session lives while its guests do; a console watching it does not keep it open.
        if notify and not self.guests:
            await self._on_empty(self)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.barge.close()
        self._audio.stop()
        self._video.stop()
        await self._peers.close()
        await self._tasks.close()

    # What the rest of the system says about the session

    def on_reply(self, chunk: ReplyChunk) -> None:
        verdict = self.playout.reply(chunk, floor_held=self.floor is not None)
        if verdict == "cut_and_show":
            self.speech.flush()
            self._face.flush(self.clock.now())
        if verdict in ("show", "cut_and_show"):
            self._show_reply(chunk)

    def on_speech_ended(self, utterance: str) -> None:
        """The turn is over: a provisional answer to it is heard now, in the order it came."""
        for item in self.playout.speech_ended(utterance):
            if isinstance(item, ReplyChunk):
                self.on_reply(item)
            elif isinstance(item, VisemeTrack):
                self.on_visemes(item)
            else:
                self.on_speech(item)

    def _show_reply(self, chunk: ReplyChunk) -> None:
        if chunk.seq == 0:
            self._face.express(chunk.expression)
        self._broadcast(
            Reply(
                reply_id=chunk.reply_id,
                seq=chunk.seq,
                text=chunk.text,
                final=chunk.final,
                deferred=chunk.deferred,
                author=chunk.author,
                citations=chunk.citations,
            )
        )
        self.audit(
            kind="spoken",
            speaker="twin",
            text=chunk.text,
            reply_id=chunk.reply_id,
            author=chunk.author,
            citations=chunk.citations,
        )

    def audit(self, **fields: Any) -> None:
        """One line into the session's audit (durable, acknowledged by JetStream)."""
        if self._publish_audit is None or self._closed:
            return
        record = AuditRecord(
            session_id=self.id,
            twin_id=self.info.twin_id,
            guest_id=self.info.guest_id,
            **fields,
        )
        self._tasks.spawn(self._record(record), name="audit")

    async def _record(self, record: AuditRecord) -> None:
        assert self._publish_audit is not None
        try:
            await self._publish_audit(record)
        except Exception:
            # The audit must not lose a line quietly: this is an operator's problem to see.
            log.exception("audit record %s of session %s not stored", record.event_id, self.id)

    def on_transcript(self, event: UtteranceTranscribed) -> None:
        self._broadcast(
            Caption(
                who=event.speaker,
                utterance_id=event.utterance_id,
                text=event.text,
                final=event.final,
            )
        )
        if event.speaker == "owner" and event.final and event.text.strip():
            self.audit(kind="spoken", speaker="owner", author="owner", text=event.text)

    def on_draft(self, draft: ReplyDrafted) -> None:
        self._broadcast(
            Draft(
                draft_id=draft.draft_id,
                question=draft.question,
                text=" ".join(draft.sentences),
                deferred=draft.deferred,
                citations=draft.citations,
            ),
            owners_only=True,
        )

    # The owner's floor

    def take_over(self, holding: Holding) -> None:
        """The owner's console holds the floor: the twin stops, mid-word if it was talking."""
        self.floor = holding
        self._silence_twin(why="the owner took over")
        self._broadcast(Floor(holder="owner", console=holding.holder))

    def hand_back(self, *, reason: Literal["owner", "expired"]) -> None:
        self.floor = None
        self._broadcast(Floor(holder="twin", reason=reason))

    async def _owner_voice(self, peer_id: str, out: Any, stt: Any) -> None:
        floor = self.floor
        if floor is None or floor.holder != peer_id:
            return  # the owner's microphone is heard only while their console holds the floor
        # Live voice: a burst of late packets must not become lasting delay, so the owner's
        # queue is kept short and a frame that would lengthen it further is dropped.
        if self.speech.queued_until - self.speech.present() <= OWNER_MAX_LEAD:
            start = self.speech.schedule(out, tag="owner")
            viseme = viseme_for(out)
            if viseme is not None:
                self._face.speak(
                    [(viseme, 0.0, OWNER_FRAME_S)], start_s=start / SAMPLE_RATE, speaker="owner"
                )
        if self._publish_owner_audio is not None:
            chunk = PcmChunk(
                pcm=stt.tobytes(),
                sample_rate=GUEST_SAMPLE_RATE,
                seq=self._owner_seq,
                stream=peer_id,
            )
            self._owner_seq += 1
            await self._publish_owner_audio(chunk)

    def on_mood(self, event: MoodEstimated) -> None:
        if event.whose == "guest":
            self._broadcast(
                Mood(label=event.label, valence=event.valence, arousal=event.arousal),
                owners_only=True,
            )
            self._face.set_mood(label=event.label, valence=event.valence, arousal=event.arousal)
        else:
            self._face.set_energy(event.energy)

    def on_speech_started(self) -> None:
        """Barge-in: the guest talks over the twin, so everything queued goes."""
        if self.floor is not None:
            # Two people talking: the owner's voice is not the twin's to cut.
            self.playout.cancel_heard()
            return
        self._silence_twin(why="the guest spoke")

    def _silence_twin(self, *, why: str) -> None:
        now = self.clock.now()
        for reply in self.speech.unsent():
            if reply != "owner":
                # The audit holds each sentence as it went out; this says where it stopped.
                self.audit(kind="cut", speaker="system", reply_id=reply, text=f"cut off: {why}")
        dropped = self.speech.flush()
        self._face.flush(now)
        self.playout.cut()
        if dropped:
            self.stats.flushed_at.append(time.monotonic())
            self._broadcast(Interrupted())

    def on_speech(self, chunk: PcmChunk) -> None:
        if self.playout.speech(chunk) != "play":
            return
        samples = self._resample.convert(
            chunk.stream, chunk.pcm, chunk.sample_rate, last=chunk.last
        )
        start = self.speech.schedule(samples, tag=chunk.stream)
        track = self.playout.placed(chunk, start)
        if track is not None:
            self._animate(track, start)

    def on_visemes(self, track: VisemeTrack) -> None:
        start = self.playout.visemes(track)
        if isinstance(start, int):
            self._animate(track, start)

    def _animate(self, track: VisemeTrack, start: int) -> None:
        rate = track.sample_rate
        self._face.speak(
            [(v.viseme, v.start / rate, v.end / rate) for v in track.visemes],
            start_s=start / SAMPLE_RATE,
        )

    def _sounded(self, replies: list[str]) -> None:
        now = time.monotonic()
        for reply in replies:
            if reply not in self.stats.first_sound:
                self.stats.first_sound[reply] = now
                # `at` is CLOCK_MONOTONIC, one clock for every process on the host: a client on
                # the same host can tell the gateway's part of the latency from the network's.
                self._broadcast(Speaking(reply_id=reply, at=now))

    def _frame(self, t: float, pts: int) -> av.VideoFrame:
        frame, animation = self._face.frame(t, pts, session_id=self.id)
        self._peers.animate(animation.model_dump_json())
        if not self._closed:
            self._tasks.spawn(self._animate_bus(animation), name="animation")
        return frame

    async def _animate_bus(self, animation: AnimationFrame) -> None:
        try:
            await self._publish_animation(animation)
        except Exception as error:  # the face must not stop because the bus hiccups
            log.debug("animation frame not published: %s", error)

    def _broadcast(self, message: ToPage, *, owners_only: bool = False) -> None:
        self._peers.broadcast(message, owners_only=owners_only)
