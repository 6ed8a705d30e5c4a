"""Raw PCM on the wire: the bytes are the samples, the metadata rides in NATS headers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from twincast_shared.contract.subjects import is_valid_token

GUEST_SAMPLE_RATE: Final = 16_000
GUEST_FRAME_MS: Final = 20
MAX_CHUNK_SECONDS: Final = 30

H_RATE: Final = "tc-sample-rate"
H_CHANNELS: Final = "tc-channels"
H_SEQ: Final = "tc-seq"
H_CAPTURE_NS: Final = "tc-capture-ns"
H_STREAM: Final = "tc-stream"
H_LAST: Final = "tc-last"
H_FORMAT: Final = "tc-format"
FORMAT: Final = "pcm_s16le"


class InputError(ValueError):
    """Input that breaks the contract; the message is the reason given back in `Rejected`."""


class AudioFormatError(InputError):
    """PCM bytes or headers that break the audio contract."""


@dataclass(frozen=True, slots=True)
class PcmChunk:
    """Signed 16-bit little-endian PCM.

    `stream` names the utterance or reply the chunk belongs to; `last` closes that stream.
    """

    pcm: bytes
    sample_rate: int
    seq: int
    stream: str
    channels: int = 1
    capture_ns: int = field(default_factory=time.monotonic_ns)
    last: bool = False

    @property
    def samples(self) -> int:
        return len(self.pcm) // (2 * self.channels)

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.samples / self.sample_rate

    def headers(self) -> dict[str, str]:
        return {
            H_FORMAT: FORMAT,
            H_RATE: str(self.sample_rate),
            H_CHANNELS: str(self.channels),
            H_SEQ: str(self.seq),
            H_CAPTURE_NS: str(self.capture_ns),
            H_STREAM: self.stream,
            H_LAST: "1" if self.last else "0",
        }

    @classmethod
    def from_wire(
        cls,
        body: bytes,
        headers: Mapping[str, str],
        *,
        expect_rate: int | None = None,
    ) -> PcmChunk:
        """Decode and check one chunk; raises AudioFormatError with the reason."""
        if headers.get(H_FORMAT) != FORMAT:
            raise AudioFormatError(f"header {H_FORMAT} must be {FORMAT!r}")
        rate = _int_header(headers, H_RATE, low=8_000, high=48_000)
        channels = _int_header(headers, H_CHANNELS, low=1, high=2)
        seq = _int_header(headers, H_SEQ, low=0, high=2**63 - 1)
        capture_ns = _int_header(headers, H_CAPTURE_NS, low=0, high=2**63 - 1)
        stream = headers.get(H_STREAM, "")
        if not is_valid_token(stream):
            raise AudioFormatError(f"header {H_STREAM} must be a token of 1-64 [A-Za-z0-9_-]")
        last = headers.get(H_LAST, "0")
        if last not in ("0", "1"):
            raise AudioFormatError(f"header {H_LAST} must be 0 or 1")
        if expect_rate is not None and rate != expect_rate:
            raise AudioFormatError(f"sample rate {rate} Hz, this subject carries {expect_rate} Hz")
        if len(body) % (2 * channels):
            raise AudioFormatError(
                f"{len(body)} bytes is not a whole number of {channels}-channel 16-bit samples"
            )
        if len(body) > MAX_CHUNK_SECONDS * rate * 2 * channels:
            raise AudioFormatError(f"chunk longer than {MAX_CHUNK_SECONDS} s")
        if not body and last != "1":
            raise AudioFormatError("empty chunk that does not close its stream")
        return cls(
            pcm=body,
            sample_rate=rate,
            channels=channels,
            seq=seq,
            capture_ns=capture_ns,
            stream=stream,
            last=last == "1",
        )


def _int_header(headers: Mapping[str, str], name: str, *, low: int, high: int) -> int:
    raw = headers.get(name)
    if raw is None:
        raise AudioFormatError(f"missing header {name}")
    try:
        value = int(raw)
    except ValueError:
        raise AudioFormatError(f"header {name} is not an integer: {raw[:32]!r}") from None
    if not low <= value <= high:
        raise AudioFormatError(f"header {name}={value} outside {low}..{high}")
    return value
