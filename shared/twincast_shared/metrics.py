"""One service's Prometheus metrics, in a registry of its own.

Several services can run in one process (the tests run all five), so nothing here touches
prometheus_client's global registry. Labels are bounded: stage, family, kind, reason class;
never a session id, a name or a word anyone said.
"""

from __future__ import annotations

from typing import Final, Literal

from faststream.message import StreamMessage
from faststream.nats.response import NatsPublishCommand
from faststream.prometheus import ConsumeAttrs, MetricsSettingsProvider, PrometheusMiddleware
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from twincast_shared.contract import subjects as s

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

Stage = Literal[
    "stt_final",
    "retrieval",
    "compose",
    "reasoning_first_chunk",
    "tts_synthesis",
    "tts_first_audio",
]
RejectionClass = Literal[
    "invalid", "session_mismatch", "no_session", "audio_format", "input", "processing_failed"
]
FloorChange = Literal["taken", "refused", "released", "lost"]
Outcome = Literal["handled", "rejected"]

# Turn stages run from a few ms (retrieval) to seconds (a long answer's synthesis).
STAGE_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
)  # fmt: skip
# Frames are due every 40 ms; a gap is how long the guest's picture stood still.
FRAME_GAP_BUCKETS: Final = (0.02, 0.03, 0.04, 0.045, 0.05, 0.06, 0.08, 0.1, 0.2, 0.5, 1.0)


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.stage_seconds = Histogram(
            "twincast_stage_seconds",
            "Time a turn spends in one stage",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.live_sessions = Gauge(
            "twincast_live_sessions", "Guest sessions with live media now", registry=r
        )
        self.frame_gap_seconds = Histogram(
            "twincast_avatar_frame_gap_seconds",
            "Time between consecutive avatar video frames sent to a guest",
            buckets=FRAME_GAP_BUCKETS,
            registry=r,
        )
        self.barge_ins = Counter(
            "twincast_barge_ins", "Guest speech that cut the twin off", registry=r
        )
        self.rejections = Counter(
            "twincast_rejections",
            "Inputs turned into Rejected events",
            ["service", "reason"],
            registry=r,
        )
        self.floor_changes = Counter(
            "twincast_floor_changes", "Changes of who holds a session's floor", ["kind"], registry=r
        )
        self.events = Counter(
            "twincast_events",
            "Bus inputs consumed, by subject family and outcome",
            ["family", "outcome"],
            registry=r,
        )
        self.handler_seconds = Histogram(
            "twincast_handler_seconds",
            "Time a handler took on one bus input",
            ["family"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )

    def observe_stage(self, stage: Stage, seconds: float) -> None:
        self.stage_seconds.labels(stage=stage).observe(seconds)

    def rejected(self, reason: RejectionClass) -> None:
        self.rejections.labels(service=self.service, reason=reason).inc()

    def floor_changed(self, kind: FloorChange) -> None:
        self.floor_changes.labels(kind=kind).inc()

    def consumed(self, family: s.Subject, outcome: Outcome, seconds: float | None = None) -> None:
        self.events.labels(family=family.stem, outcome=outcome).inc()
        if seconds is not None:
            self.handler_seconds.labels(family=family.stem).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def broker_middleware(self) -> PrometheusMiddleware[Msg, NatsPublishCommand]:
        """FastStream's own broker metrics (faststream_*), into this registry, by family."""
        return PrometheusMiddleware(
            settings_provider_factory=_families,
            registry=self.registry,
            app_name=self.service,
        )


def family_of(subject: str) -> str:
    """A concrete subject's family (`twincast.text.in`); a session id is never a label."""
    if not subject.startswith(f"{s.PREFIX}."):
        return "other"
    return subject.rpartition(".")[0]


class _FamilyProvider:
    __slots__ = ("messaging_system",)

    def __init__(self) -> None:
        self.messaging_system = "nats"

    def get_consume_attrs_from_message(self, msg: StreamMessage[Msg]) -> ConsumeAttrs:
        return {
            "destination_name": family_of(msg.raw_message.subject),
            "message_size": len(msg.body),
            "messages_count": 1,
        }

    def get_publish_destination_name_from_cmd(self, cmd: NatsPublishCommand) -> str:
        return family_of(cmd.destination)


_PROVIDER: Final = _FamilyProvider()


def _families(msg: Msg | None) -> MetricsSettingsProvider[Msg, NatsPublishCommand] | None:
    return _PROVIDER if msg is None or isinstance(msg, Msg) else None
