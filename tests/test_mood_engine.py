"""Mood engines, no bus: text cues, prosody on tones and recorded speech, fusion and its
hysteresis, the owner's state, tone of the reply, pace of the voice, the signal contract."""

from __future__ import annotations

import math
import wave

import numpy as np
import pytest
from pydantic import ValidationError

from tests.conftest import SPEECH
from twincast_bench.mood_set import audio_path, lines, load_pcm
from twincast_mood.engine import GuestMood
from twincast_mood.fusion import ChangeGate, Estimate, Evidence, MoodFusion
from twincast_mood.labels import LABELS
from twincast_mood.owner import NEUTRAL_ENERGY, owner_state
from twincast_mood.prosody import (
    KEPT_FRAMES,
    ProsodyTracker,
    SpeakerBaseline,
    analyse,
    voice_mood,
)
from twincast_mood.text import TextMoodEngine
from twincast_reasoning.answering.extractive import Answer
from twincast_reasoning.answering.tone import adapt
from twincast_shared.contract import Citation, MoodEstimated, OwnerSignal
from twincast_shared.moods import FreshSignal
from twincast_tts.engine import Delivery


def tone(hz: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(16_000 * seconds)) / 16_000
    return amplitude * np.sin(2 * np.pi * hz * t)


def pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def recorded(name: str) -> bytes:
    """A recording, and the quiet that follows it in a live stream."""
    with wave.open(str(SPEECH / name), "rb") as wav:
        return wav.readframes(wav.getnframes()) + bytes(16_000)


def feed(tracker: ProsodyTracker, data: bytes) -> list:  # type: ignore[type-arg]
    out = []
    for start in range(0, len(data), 640):
        out += tracker.feed(data[start : start + 640])
    return out


# --- text -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text() -> TextMoodEngine:
    return TextMoodEngine()


@pytest.mark.parametrize(
    ("words", "label"),
    [
        ("This is the second time the download failed, it's ridiculous!", "frustrated"),
        ("Thank you, that was a wonderful talk!", "happy"),
        ("I'm nervous that my samples got contaminated.", "anxious"),
        ("I've felt so lonely since my dog died.", "sad"),
        ("How do the bees know which flowers to visit?", "curious"),
        ("The train leaves from platform four.", "calm"),
    ],
)
def test_text_cues_name_the_label(text: TextMoodEngine, words: str, label: str) -> None:
    mood = text.estimate(words)
    assert max(mood.dist, key=lambda k: mood.dist[k]) == label, mood


def test_words_without_cues_say_little(text: TextMoodEngine) -> None:
    plain = text.estimate("The train leaves from platform four.")
    strong = text.estimate("This is ridiculous, I'm fed up with it!")
    assert plain.confidence < 0.3 < strong.confidence
    assert strong.valence < 0 < strong.arousal


def test_negated_cue_counts_for_nothing(text: TextMoodEngine) -> None:
    assert text.estimate("I'm not worried about it at all.").cues.get("anxious", 0) == 0


def test_hurry_is_heard_in_words(text: TextMoodEngine) -> None:
    assert text.estimate("Quickly, what's the bottom line?").hurried
    assert not text.estimate("Tell me about the meadow.").hurried


# --- prosody ----------------------------------------------------------------------------------


@pytest.mark.parametrize("hz", [90.0, 150.0, 220.0, 310.0])
def test_pitch_of_a_tone(hz: float) -> None:
    db, f0, _ = analyse(tone(hz))
    assert np.nanmedian(f0) == pytest.approx(hz, rel=0.02)
    assert np.all(np.abs(db + 13.5) < 0.5)  # 0.3 amplitude sine: -13.5 dBFS


def test_noise_is_not_voiced() -> None:
    rng = np.random.default_rng(0)
    _, f0, _ = analyse(rng.normal(0, 0.1, 16_000))
    assert np.mean(~np.isnan(f0)) < 0.1


@pytest.mark.parametrize("name", ["arctic_a0007.wav", "arctic_a0009.wav"])
def test_recorded_speech_gives_a_plausible_reading(name: str) -> None:
    readings = feed(ProsodyTracker(), recorded(name))
    assert readings, "a sentence of speech gives a reading"
    r = readings[-1]
    assert r.final
    assert 2.0 < r.speech_s < 3.5
    assert 1 < r.f0_spread_st < 5
    assert 3.0 < r.rate_syl_s < 7.0  # read speech: 4-6 syllables a second
    assert -5 < r.f0_st < 15  # 75-240 Hz


def test_a_voice_that_never_pauses_is_read_on_in_bounded_memory() -> None:
    t = np.arange(16_000 * 40) / 16_000  # 40 s of a loud voiced hum, no pause for a segment end
    hum = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))
    tracker = ProsodyTracker()
    readings = feed(tracker, (hum * 32767).astype("<i2").tobytes())
    assert len(readings) >= 10  # an interim reading every 3 s, all along
    assert not any(r.final for r in readings)
    assert len(tracker._speech) <= 2 * KEPT_FRAMES  # not the 2000 frames heard


def test_silence_gives_nothing_and_a_louder_voice_is_scored_louder() -> None:
    tracker = ProsodyTracker()
    assert feed(tracker, bytes(32_000)) == []
    speech = np.frombuffer(recorded("arctic_a0009.wav"), "<i2") / 32768
    baseline = SpeakerBaseline()
    for _ in range(3):
        for r in feed(ProsodyTracker(), pcm(speech)):
            baseline.add(r, baseline.z(r))
    (same,) = feed(ProsodyTracker(), pcm(speech))
    (loud,) = feed(ProsodyTracker(), pcm(speech * 3.0))
    assert abs(baseline.z(same)["loudness"]) < 0.5
    assert baseline.z(loud)["loudness"] > 2.0


def test_voice_far_below_its_baseline_reads_sad_and_usual_voice_says_nothing() -> None:
    from twincast_mood.prosody import ProsodyReading

    reading = ProsodyReading(2.0, 0.0, 1.5, -35.0, 3.0, 0.0, 0.7, final=True)
    low = voice_mood(reading, {"f0": -1.5, "spread": -1.2, "loudness": -2.0, "rate": -1.5}, 8.0)
    usual = voice_mood(reading, {"f0": 0.1, "spread": -0.2, "loudness": 0.2, "rate": 0.3}, 8.0)
    assert max(low.dist, key=lambda k: low.dist[k]) == "sad"
    assert low.confidence > 0.4
    assert usual.confidence == 0.0


def test_sad_delivery_of_plain_words_is_heard_over_the_calm_words() -> None:
    """The set's s5: neutral words, sad delivery; the words alone read calm."""
    clock = [0.0]
    guest = GuestMood(TextMoodEngine(), clock=lambda: clock[0])
    every = {line.id: line for line in lines()}
    for name in ("k1", "k2", "k3"):
        for start in range(0, len(data := load_pcm(audio_path(every[name]))), 640):
            clock[0] += 0.02
            guest.hear(data[start : start + 640])
    clock[0] += 60
    data = load_pcm(audio_path(every["s5"]))
    for start in range(0, len(data), 640):
        clock[0] += 0.02
        guest.hear(data[start : start + 640])
    guest.read(every["s5"].text, key="u1")
    assert guest.current().label == "sad"
    words_only = GuestMood(TextMoodEngine(), voice=False)
    words_only.read(every["s5"].text, key="u1")
    assert words_only.current().label == "calm"


# --- fusion -----------------------------------------------------------------------------------


def evidence(label: str, *, key: str, at: float = 0.0, confidence: float = 0.8) -> Evidence:
    dist = {name: (0.8 if name == label else 0.2 / (len(LABELS) - 1)) for name in LABELS}
    return Evidence(key, "text", at, dist, confidence, valence=0.0, arousal=0.0)


def test_fusion_holds_its_label_against_a_slightly_better_one() -> None:
    fusion = MoodFusion(margin=0.12)
    fusion.add(evidence("frustrated", key="a"))
    assert fusion.estimate(0.0).label == "frustrated"
    fusion.add(evidence("happy", key="b", confidence=0.9))
    assert fusion.estimate(0.0).label == "frustrated", "within the margin: no flip"
    fusion.add(evidence("happy", key="c", confidence=0.9))
    assert fusion.estimate(0.0).label == "happy", "clearly better: it changes"


def test_evidence_fades_and_leaves_the_window() -> None:
    fusion = MoodFusion(window_s=30, half_life_s=10)
    fusion.add(evidence("sad", key="a"))
    assert fusion.estimate(0.0).confidence > fusion.estimate(20.0).confidence
    assert fusion.estimate(31.0).basis == ()


def test_partial_is_replaced_by_final_of_the_same_utterance() -> None:
    guest = GuestMood(TextMoodEngine(), voice=False, clock=lambda: 0.0)
    guest.read("This is fine", key="u1", final=False)
    guest.read("This is ridiculous, I'm fed up!", key="u1", final=True)
    assert guest.current().label == "frustrated"
    assert len(guest.fusion._evidence) == 1


def test_gate_publishes_changes_only() -> None:
    gate = ChangeGate(min_delta=0.25)
    calm = Estimate("calm", 0.5, 0.2, -0.4, False, ("text",))
    assert gate.worth(calm)
    assert not gate.worth(Estimate("calm", 0.55, 0.25, -0.35, False, ("text",)))
    assert gate.worth(Estimate("calm", 0.55, 0.25, -0.35, True, ("text",))), "hurry changed"
    assert gate.worth(Estimate("frustrated", 0.5, -0.5, 0.6, True, ("text",)))


# --- owner ------------------------------------------------------------------------------------


def signals(**values: float) -> list[FreshSignal]:
    return [FreshSignal(kind, value, 0.0) for kind, value in values.items()]


def test_owner_energy_follows_sleep_and_load() -> None:
    tired = owner_state(signals(sleep_hours=4.0, calendar_load=0.95, meetings_today=9))
    rested = owner_state(signals(sleep_hours=8.5, hrv=80, calendar_load=0.2))
    assert tired.energy < 0.35 < NEUTRAL_ENERGY < 0.7 < rested.energy
    assert tired.label in ("tired", "stretched")
    assert rested.label in ("rested", "lively")
    assert owner_state([]).energy == NEUTRAL_ENERGY


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("mood_ring", 1.0, "unknown signal kind"),
        ("heart_rate", math.nan, "finite"),
        ("heart_rate", 400.0, "implausible"),
        ("sleep_hours", -1.0, "implausible"),
        ("calendar_load", 1.5, "implausible"),
    ],
)
def test_implausible_signals_are_refused_by_the_contract(
    kind: str, value: float, reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        OwnerSignal(session_id="juniper", twin_id="juniper", kind=kind, value=value)


def test_mood_event_without_the_new_fields_still_validates() -> None:
    old = MoodEstimated.model_validate_json(
        '{"session_id": "s", "whose": "guest", "valence": 0.1, "arousal": 0.2, '
        '"energy": 0.5, "label": "calm"}'
    )
    assert old.confidence == 1.0
    assert not old.hurried
    assert old.basis == ()


# --- tone and pace ----------------------------------------------------------------------------

CITE = Citation(source_id="s1", title="Rooftop bees")
BODY = (
    "We found 54 bee species on the rooftops.",
    "Most of them were solitary bees nesting in the gravel.",
    "The green roofs held twice as many as the bare ones.",
)
GREETING = ("Hi, I'm Juniper Hale's AI twin.",)


def answer(*, deferred: bool = False) -> Answer:
    return Answer(sentences=(*GREETING, *BODY), citations=(CITE,), deferred=deferred, body=BODY)


def guest(label: str, *, confidence: float = 0.7, hurried: bool = False) -> MoodEstimated:
    return MoodEstimated(
        session_id="s",
        whose="guest",
        valence=-0.5,
        arousal=0.5,
        energy=0.7,
        label=label,
        confidence=confidence,
        hurried=hurried,
    )


def test_frustrated_guest_is_acknowledged_before_the_answer() -> None:
    out = adapt(answer(), question="Why is it still not fixed?", mood=guest("frustrated"))
    assert out.sentences[0] == GREETING[0], "the AI-twin disclosure stays first"
    assert "frustrating" in out.sentences[1]
    assert out.sentences[2:] == BODY
    assert out.body == BODY
    assert out.citations == (CITE,)


def test_hurried_guest_gets_the_first_sentences_only() -> None:
    out = adapt(answer(), question="Quickly, how many species?", mood=None)
    assert out.sentences == (*GREETING, *BODY[:2])
    assert out.citations == (CITE,)
    by_voice = adapt(answer(), question="How many species?", mood=guest("calm", hurried=True))
    assert by_voice.body == BODY[:2]


def test_unsure_mood_and_deferrals_are_left_alone() -> None:
    assert adapt(answer(), question="x", mood=guest("frustrated", confidence=0.1)) == answer()
    deferred = answer(deferred=True)
    out = adapt(deferred, question="Quickly?", mood=None)
    assert out.body == deferred.body


def test_voice_pace_follows_the_guest() -> None:
    hurried = Delivery.for_mood(arousal=0.0, energy=0.5, label="calm", hurried=True)
    upset = Delivery.for_mood(arousal=0.8, energy=0.8, label="frustrated")
    lively = Delivery.for_mood(arousal=0.8, energy=0.8, label="happy")
    assert hurried.length_scale < lively.length_scale < 1.0 < upset.length_scale
