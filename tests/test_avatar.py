"""The avatar engine: portrait and landmarks, the animator's timing, frames in yuv420p."""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.codecs.vpx import Vp8Encoder
from PIL import Image
from skimage import data

from twincast.runtime import EXAMPLES
from twincast_gateway.avatar import (
    DEFAULT_SIZE,
    INSTALL_HINT,
    VISEME_SHAPES,
    Animator,
    FaceNotFoundError,
    FaceState,
    Head,
    LandmarksUnavailableError,
    Portrait,
    PortraitError,
    PortraitRenderer,
    Renderer,
    create_portrait,
    find_landmarks,
    visemes_from_track,
)
from twincast_gateway.avatar.drawn import draw_juniper
from twincast_gateway.avatar.rig import Rect
from twincast_gateway.session.media import AvatarVideoTrack, MediaClock
from twincast_shared.contract import AnimationFrame, Viseme, VisemeTrack
from twincast_tts.visemes import VISEMES

JUNIPER_FACE = EXAMPLES / "juniper" / "face" / "portrait.png"
FRAME_S = 1 / 25


@pytest.fixture(scope="module")
def astronaut() -> npt.NDArray[np.uint8]:
    return np.asarray(data.astronaut(), dtype=np.uint8)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def astronaut_portrait(astronaut: npt.NDArray[np.uint8]) -> Portrait:
    return Portrait.from_photo(astronaut)


@pytest.fixture(scope="module")
def juniper() -> PortraitRenderer:
    return PortraitRenderer.from_portrait(Portrait.load(JUNIPER_FACE))


@pytest.fixture(scope="module")
def astronaut_renderer(astronaut_portrait: Portrait) -> PortraitRenderer:
    return PortraitRenderer.from_portrait(astronaut_portrait)


def i420(renderer: PortraitRenderer, state: FaceState) -> npt.NDArray[np.uint8]:
    return np.asarray(renderer.render(state, 0).to_ndarray(), dtype=np.uint8)


def planes(frame: npt.NDArray[np.uint8]) -> Iterator[npt.NDArray[np.uint8]]:
    size = frame.shape[1]
    yield frame[:size]
    chroma = frame[size:].reshape(2, size // 2, size // 2)
    yield chroma[0]
    yield chroma[1]


def changed_only_inside(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], rects: list[Rect]
) -> tuple[float, int]:
    """Mean |difference| inside the rectangles (luma) and the count of changes outside (all)."""
    diff_inside, inside_px, outside = 0.0, 0, 0
    for index, (pa, pb) in enumerate(zip(planes(a), planes(b), strict=True)):
        step = 1 if index == 0 else 2
        diff = np.abs(pa.astype(np.int16) - pb.astype(np.int16))
        mask = np.zeros(diff.shape, dtype=bool)
        for r in rects:
            mask[r.y0 // step : r.y1 // step, r.x0 // step : r.x1 // step] = True
        outside += int(np.count_nonzero(diff[~mask]))
        if index == 0:
            diff_inside += float(diff[mask].sum())
            inside_px += int(mask.sum())
    return diff_inside / inside_px, outside


# -- portrait and landmarks ----------------------------------------------------------------


def test_astronaut_landmarks_sit_on_her_mouth_and_eyes(astronaut_portrait: Portrait) -> None:
    g = astronaut_portrait.geometry
    assert (g.width, g.height) == (512, 512)
    lip_x, lip_y = g.lips_inner_upper[len(g.lips_inner_upper) // 2]  # landmark 13
    assert 205 < lip_x < 240
    assert 130 < lip_y < 155
    assert 185 < g.iris_left.x < 215
    assert 90 < g.iris_left.y < 112
    assert 235 < g.iris_right.x < 260
    assert 90 < g.iris_right.y < 112
    assert g.iris_left.x < lip_x < g.iris_right.x
    assert g.iris_left.y < g.nose_tip[1] < lip_y < g.face_box[3]
    assert 25 < g.mouth_width < 70
    assert 80 < g.face_height < 160


def test_portrait_round_trip(tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> None:
    photo = tmp_path / "photo.jpg"
    Image.fromarray(astronaut).save(photo, quality=95)
    created = create_portrait(photo, tmp_path / "twin" / "portrait.png")
    assert (tmp_path / "twin" / "portrait.json").is_file()
    loaded = Portrait.load(tmp_path / "twin" / "portrait.png")
    assert np.array_equal(loaded.image, created.image)
    for name in ("oval", "lips_inner_upper", "eye_left_upper", "brow_right"):
        got = np.array(getattr(loaded.geometry, name))
        want = np.array(getattr(created.geometry, name))
        assert np.allclose(got, want, atol=0.01)
    assert loaded.geometry.iris_left.radius == pytest.approx(
        created.geometry.iris_left.radius, abs=0.01
    )


def test_a_blank_image_has_no_face() -> None:
    with pytest.raises(FaceNotFoundError, match="no face"):
        find_landmarks(np.full((256, 256, 3), 200, dtype=np.uint8))


def test_a_corrupt_image_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "me.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 20)
    with pytest.raises(PortraitError, match="cannot read"):
        create_portrait(broken, tmp_path / "portrait.png")
    with pytest.raises(PortraitError, match="no such image"):
        create_portrait(tmp_path / "missing.jpg", tmp_path / "portrait.png")


def test_a_portrait_without_its_geometry_is_a_clear_error(tmp_path: Path) -> None:
    Image.new("RGB", (64, 64)).save(tmp_path / "face.png")
    with pytest.raises(PortraitError, match="no face geometry"):
        Portrait.load(tmp_path / "face.png")
    (tmp_path / "face.json").write_text('{"format": "something else"}')
    with pytest.raises(PortraitError, match="format"):
        Portrait.load(tmp_path / "face.png")


def test_missing_mediapipe_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, astronaut: npt.NDArray[np.uint8]
) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(LandmarksUnavailableError) as caught:
        find_landmarks(astronaut)
    assert INSTALL_HINT in str(caught.value)
    assert "pip install 'twincast[faces]'" in str(caught.value)


def test_juniper_is_drawn_by_the_project_and_her_geometry_comes_from_the_drawing() -> None:
    committed = Portrait.load(JUNIPER_FACE)
    assert committed.geometry.source == "drawn"
    redrawn = draw_juniper()
    assert redrawn.geometry.to_json() == committed.geometry.to_json()
    difference = np.abs(redrawn.image.astype(np.int16) - committed.image.astype(np.int16))
    assert float(difference.mean()) < 1.0  # same drawing (allowing for Pillow versions)


# -- frames --------------------------------------------------------------------------------


def test_frames_are_yuv420p_of_the_declared_size(juniper: PortraitRenderer) -> None:
    assert isinstance(juniper, Renderer)
    assert (juniper.width, juniper.height) == (DEFAULT_SIZE, DEFAULT_SIZE)
    frame = juniper.render(FaceState(t_s=0.04, mouth_open=0.5), 3600)
    assert frame.format.name == "yuv420p"
    assert (frame.width, frame.height) == (DEFAULT_SIZE, DEFAULT_SIZE)
    assert frame.pts == 3600
    assert frame.time_base == Fraction(1, 90_000)
    payloads, timestamp = Vp8Encoder().encode(frame, force_keyframe=True)
    assert payloads
    assert timestamp == 3600


def test_juniper_renders_her_portrait(juniper: PortraitRenderer) -> None:
    frame = juniper.render(FaceState(t_s=0.0), 0).to_ndarray(format="rgb24")
    source = np.asarray(juniper.rig.i420)
    assert frame.shape == (DEFAULT_SIZE, DEFAULT_SIZE, 3)
    assert np.array_equal(juniper.render(FaceState(t_s=0.0), 0).to_ndarray(), source)
    # The middle of the frame is her face (skin tones), not the green background.
    r, g, b = frame[200:230, 210:240].reshape(-1, 3).mean(axis=0)
    assert r > g > b


@pytest.mark.parametrize("which", ["juniper", "astronaut_renderer"])
def test_an_open_mouth_changes_the_mouth_and_nothing_else(
    which: str, request: pytest.FixtureRequest
) -> None:
    renderer: PortraitRenderer = request.getfixturevalue(which)
    closed = i420(renderer, FaceState(t_s=0.0, viseme="sil", mouth_open=0.0))
    opened = i420(renderer, FaceState(t_s=0.0, viseme="aa", mouth_open=0.95, mouth_width=0.15))
    inside, outside = changed_only_inside(closed, opened, [renderer.rig.mouth.rect])
    assert inside > 4.0
    assert outside == 0
    # The lips part in the middle of the mouth: the inside shows dark below the lip line.
    g = renderer.rig.geometry
    x = round((g.mouth_left[0] + g.mouth_right[0]) / 2)
    y = round(g.lips_inner_lower[len(g.lips_inner_lower) // 2][1])
    below = slice(y, y + round(g.mouth_width / 4))
    assert int(opened[below, x].min()) < int(closed[below, x].min()) - 40


@pytest.mark.parametrize("which", ["juniper", "astronaut_renderer"])
def test_a_blink_changes_the_eyes_and_nothing_else(
    which: str, request: pytest.FixtureRequest
) -> None:
    renderer: PortraitRenderer = request.getfixturevalue(which)
    rects = [eye.rect for eye in renderer.rig.eyes]
    awake = i420(renderer, FaceState(t_s=0.0, blink=0.0))
    shut = i420(renderer, FaceState(t_s=0.0, blink=1.0))
    inside, outside = changed_only_inside(awake, shut, rects)
    assert inside > 2.0
    assert outside == 0
    # The iris is covered by the lid: much less contrast around it.
    g = renderer.rig.geometry
    for iris in (g.iris_left, g.iris_right):
        r = max(2, round(iris.radius))
        x, y = round(iris.x), round(iris.y)
        assert abs(int(shut[y, x]) - int(awake[y, x])) > 20 or (
            np.std(shut[y - r : y + r, x - r : x + r]) < np.std(awake[y - r : y + r, x - r : x + r])
        )


def test_expression_and_energy_show_on_the_face(juniper: PortraitRenderer) -> None:
    neutral = i420(juniper, FaceState(t_s=0.0, energy=0.3))
    happy = i420(juniper, FaceState(t_s=0.0, energy=0.3, expression="happy", expression_weight=1))
    curious = i420(
        juniper, FaceState(t_s=0.0, energy=0.3, expression="curious", expression_weight=1)
    )
    bright = i420(juniper, FaceState(t_s=0.0, energy=1.0))
    mouth, eyes = [juniper.rig.mouth.rect], [e.rect for e in juniper.rig.eyes]
    assert changed_only_inside(neutral, happy, [*mouth, *eyes])[0] > 0.3
    assert changed_only_inside(neutral, curious, [*mouth, *eyes])[1] == 0
    assert changed_only_inside(neutral, curious, eyes)[0] > 0.3
    assert changed_only_inside(neutral, bright, eyes)[1] == 0
    assert not np.array_equal(neutral, bright)


def test_head_motion_moves_the_face_inside_the_head_region(juniper: PortraitRenderer) -> None:
    still = i420(juniper, FaceState(t_s=0.0))
    turned = i420(juniper, FaceState(t_s=0.0, head=Head(yaw=3.0, pitch=-2.0, roll=1.0)))
    inside, outside = changed_only_inside(still, turned, [juniper.rig.head_rect])
    assert inside > 1.0
    assert outside == 0
    # Luma moves right and down: the face, shifted back, matches the still frame better.
    g = juniper.rig.geometry
    x0, y0, x1, y1 = (round(v) for v in g.face_box)
    a = still[y0:y1, x0:x1].astype(np.int16)
    b = turned[y0:y1, x0:x1].astype(np.int16)
    shift = round(3.0 * juniper.rig.px_per_degree)
    assert np.abs(a[:, :-shift] - b[:, shift:]).mean() < np.abs(a - b).mean()


# -- the animator --------------------------------------------------------------------------


def run(animator: Animator, start_s: float, seconds: float) -> list[FaceState]:
    return [animator.state(start_s + k * FRAME_S) for k in range(round(seconds / FRAME_S))]


def test_every_tts_viseme_has_a_mouth_shape() -> None:
    assert set(VISEMES) <= set(VISEME_SHAPES)
    assert VISEME_SHAPES["aa"].open > VISEME_SHAPES["ih"].open > VISEME_SHAPES["PP"].open
    assert VISEME_SHAPES["ou"].width < 0 < VISEME_SHAPES["E"].width


def test_listening_stays_alive(juniper: PortraitRenderer) -> None:
    animator = Animator(seed=3)
    states = run(animator, 0.0, 2.0)
    assert all(s.speaker == "none" and s.mouth_open == 0 for s in states)
    heads = {(round(s.head.yaw, 3), round(s.head.pitch, 3)) for s in states}
    assert len(heads) > 40
    frames = [juniper.render(s, k * 3600).to_ndarray() for k, s in enumerate(states)]
    distinct = {f.tobytes() for f in frames}
    assert len(distinct) > len(frames) // 2


def test_the_mouth_follows_the_visemes_without_snapping() -> None:
    animator = Animator(seed=1)
    animator.speak([("sil", 0.0, 0.2), ("aa", 0.2, 0.5), ("PP", 0.5, 0.6)], 10.0)
    times = (10.1, 10.15, 10.17, 10.185, 10.2, 10.35, 10.55)
    at = {round(t, 3): animator.state(t) for t in times}
    assert at[10.1].mouth_open == 0
    assert at[10.1].speaker == "twin"
    # The first vowel after a pause is open by the time it sounds, rising to it smoothly over
    # more than a 25 fps frame, not in one step.
    assert 0 < at[10.17].mouth_open < at[10.185].mouth_open < at[10.2].mouth_open
    assert at[10.15].mouth_open < 0.5 * at[10.2].mouth_open
    assert at[10.2].mouth_open > 0.8
    assert at[10.35].viseme == "aa"
    assert at[10.35].mouth_open > 0.8
    assert at[10.55].viseme == "PP"
    assert at[10.55].mouth_open < 0.1
    assert animator.state(11.0).speaker == "none"


def test_flush_closes_the_mouth_at_once() -> None:
    animator = Animator(seed=2)
    animator.speak([("aa", 0.0, 2.0), ("oh", 2.0, 3.0)], 5.0)
    assert animator.state(6.0).mouth_open > 0.8
    dropped = animator.flush(6.04)
    assert dropped == 2
    after = animator.state(6.04)
    assert after.mouth_open == 0.0
    assert after.speaker == "none"
    assert after.viseme == "sil"
    assert all(s.mouth_open == 0.0 for s in run(animator, 6.08, 3.0))
    assert animator.scheduled_until() <= 6.04


def test_speech_after_a_flush_plays() -> None:
    animator = Animator(seed=2)
    animator.speak([("aa", 0.0, 1.0)], 0.0)
    animator.flush(0.5)
    animator.speak([("oh", 0.0, 0.5)], 1.0)
    assert animator.state(1.25).viseme == "oh"
    assert animator.state(1.3).mouth_open > 0.5


def test_same_seed_same_face_other_seed_other_face() -> None:
    def script(seed: int) -> list[FaceState]:
        animator = Animator(seed=seed)
        animator.speak([("E", 0.0, 0.4), ("sil", 0.4, 0.6)], 0.5)
        states = run(animator, 0.0, 2.0)
        animator.set_mood("excited", 0.8, 0.6)
        animator.set_energy(0.2)
        return states + run(animator, 2.0, 3.0)

    assert script(7) == script(7)
    assert script(7) != script(8)


def test_blinks_come_faster_with_energy_and_lids_droop_when_tired() -> None:
    def blinks(energy: float) -> tuple[int, float]:
        animator = Animator(seed=5, energy=energy)
        states = run(animator, 0.0, 60.0)
        closed = [s.blink > 0.7 for s in states]
        starts = sum(1 for a, b in itertools.pairwise(closed) if b and not a)
        return starts, min(s.blink for s in states)

    lively, lively_rest = blinks(1.0)
    tired, tired_rest = blinks(0.0)
    assert 12 <= lively <= 45
    assert 6 <= tired <= 30
    assert lively > tired
    assert lively_rest == 0.0
    assert tired_rest > 0.1


def test_moods_fade_in_as_expressions() -> None:
    animator = Animator(seed=4)
    animator.state(0.0)
    animator.set_mood("excited", valence=0.8, arousal=0.6)
    states = run(animator, 0.0, 2.0)
    assert states[-1].expression == "happy"
    assert states[-1].expression_weight > 0.6
    weights = [s.expression_weight for s in states]
    assert weights[1] < 0.3  # it fades in, it does not jump
    animator.set_mood("upset", valence=-0.7, arousal=0.5)
    states = run(animator, 2.0, 2.0)
    assert states[0].expression == "happy"  # the smile fades out first
    assert states[-1].expression == "concerned"
    assert states[-1].expression_weight > 0.5
    animator.set_mood("something new", valence=0.0, arousal=0.8, intensity=0.4)
    assert run(animator, 4.0, 2.0)[-1].expression == "curious"


def test_head_motion_is_small_and_livelier_when_speaking() -> None:
    quiet = Animator(seed=9)
    talking = Animator(seed=9)
    talking.speak([("aa" if k % 2 else "E", k * 0.15, k * 0.15 + 0.15) for k in range(60)], 0.0)
    a, b = run(quiet, 0.0, 8.0), run(talking, 0.0, 8.0)
    for states in (a, b):
        assert all(abs(s.head.yaw) < 6 and abs(s.head.pitch) < 6 for s in states)

    def spread(states: list[FaceState]) -> float:
        return float(np.std([s.head.yaw for s in states]) + np.std([s.head.pitch for s in states]))

    assert spread(b[50:]) > spread(a[50:])


def test_face_state_becomes_the_contract_frame() -> None:
    animator = Animator(seed=1)
    animator.speak([("ou", 0.0, 0.5)], 1.0)
    state = animator.state(1.25)
    event = state.to_animation_frame(session_id="s-1")
    assert isinstance(event, AnimationFrame)
    assert event.t_ms == pytest.approx(1250.0)
    assert event.viseme == "ou"
    assert event.speaker == "twin"
    assert event.mouth_open == pytest.approx(state.mouth_open)
    assert event.head.yaw == pytest.approx(state.head.yaw)
    extreme = FaceState(t_s=1.0, blink=1.5, head=Head(yaw=90.0), mouth_open=-1)
    clipped = extreme.to_animation_frame(session_id="s-1")
    assert clipped.blink == 1.0
    assert clipped.head.yaw == 45.0
    assert clipped.mouth_open == 0.0


def test_a_tts_track_becomes_seconds() -> None:
    track = VisemeTrack(
        session_id="s-1",
        reply_id="r-1",
        seq=0,
        sample_rate=22_050,
        visemes=(
            Viseme(viseme="sil", start=0, end=2205),
            Viseme(viseme="aa", start=2205, end=6615),
        ),
    )
    spans = visemes_from_track(track)
    assert spans[0] == ("sil", 0.0, 0.1)
    assert spans[1][0] == "aa"
    assert math.isclose(spans[1][2], 0.3)


async def test_each_video_frame_shows_the_face_at_the_middle_of_its_time_on_screen() -> None:
    clock = MediaClock()
    asked: list[tuple[float, int]] = []

    def source(t: float, pts: int) -> av.VideoFrame:
        asked.append((t, pts))
        return av.VideoFrame(width=16, height=16, format="yuv420p")

    track = AvatarVideoTrack(clock=clock, fps=25, source=source)
    frames = [await track.recv() for _ in range(3)]
    track.stop()
    for frame, (t, pts) in zip(frames, asked, strict=True):
        assert frame.pts == pts
        on_screen_from = pts / 90_000
        assert math.isclose(t, on_screen_from + 0.02, abs_tol=1e-9)
    assert [pts for _, pts in asked] == [asked[0][1] + k * 3600 for k in range(3)]
