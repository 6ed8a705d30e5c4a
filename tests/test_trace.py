"""One trace per turn: trace context rides in NATS headers from the guest's audio to the speech."""

from __future__ import annotations

from collections import Counter

from tests.conftest import SPEECH, Stack
from twincast.client import ask
from twincast_shared.telemetry import PII_PREFIX


async def test_one_turn_is_one_trace_across_stt_reasoning_and_tts(stack: Stack) -> None:
    stack.spans.clear()
    result = await ask(
        stack.settings,
        audio=SPEECH / "arctic_a0007.wav",
        tracer_provider=stack.tracer_provider,
    )
    spans = stack.spans.get_finished_spans()
    turn = next(span for span in spans if span.name == "turn")
    trace_id = turn.context.trace_id
    in_turn = [span for span in spans if span.context.trace_id == trace_id]
    names = Counter(span.name for span in in_turn)

    # The answer is composed either on the final transcript or, earlier, on the speculative one.
    answered = ("reasoning.answer", "reasoning.speculate")
    assert any(names[n] for n in answered), f"reasoning is not in the turn's trace: {sorted(names)}"
    for stage in ("stt.transcribe", "tts.synthesize"):
        assert names[stage] >= 1, f"{stage} is not in the turn's trace: {sorted(names)}"
    session = result.session_id
    for hop in ("audio.in", "stt.final", "reply", "tts.audio"):
        assert any(f"twincast.{hop}." in name for name in names), f"no {hop} span"

    # Every span this session produced belongs to the turn's single trace.
    of_session = [
        span
        for span in spans
        if session in span.name or (span.attributes or {}).get("twincast.session_id") == session
    ]
    assert {span.context.trace_id for span in of_session} == {trace_id}

    transcripts = [s for s in in_turn if s.name in ("stt.transcribe", "stt.partial")]
    stt = min(transcripts, key=lambda s: s.start_time or 0)
    reasoning = next(span for span in in_turn if span.name in answered)
    assert stt.start_time is not None
    assert reasoning.start_time is not None
    assert stt.start_time <= reasoning.start_time

    # Conversation content only in attributes marked personal, never in span names.
    final = next(span for span in in_turn if span.name == "stt.transcribe")
    assert (final.attributes or {}).get(f"{PII_PREFIX}transcript") == result.transcript
    for span in in_turn:
        assert result.transcript not in span.name
        for name, value in (span.attributes or {}).items():
            if isinstance(value, str) and len(value) > 20 and value in result.reply:
                assert name.startswith(PII_PREFIX), f"{name} carries reply text"
