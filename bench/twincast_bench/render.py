"""Avatar video cost per session: animator + portrait renderer + aiortc's VP8 encoder, per frame.

One scripted session at 25 fps: the twin speaks (a seeded viseme track of sentence-like
bursts), listens, changes mood and energy, and is interrupted (flush), so every part of the
face moves. Each frame is timed apart for `Animator.state`, `PortraitRenderer.render` and
`Vp8Encoder.encode` (aiortc's own encoder, as a peer connection would run it). Sprites are
built before timing (`FaceRig.warm`); building them is reported on its own.

`sessions_per_2_cores` divides two cores by the process CPU time per frame (state + render +
encode) at 25 fps. It is video only: Opus, RTP/SRTP, ICE and asyncio also cost CPU, so it is
an upper bound for whole sessions. `*_ms` are wall times (what a frame waits), `*_cpu_ms` the
thread's CPU time (what capacity depends on; the same on an idle machine, lower than wall on a
busy one). `encode_cpu_ms_by_size` shows what the output size costs the encoder.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import av
from aiortc.codecs.vpx import Vp8Encoder

from twincast.runtime import EXAMPLES
from twincast_gateway.avatar import (
    DEFAULT_SIZE,
    FPS,
    VIDEO_CLOCK_RATE,
    Animator,
    FaceRig,
    Portrait,
    PortraitRenderer,
    VisemeSpan,
)
from twincast_testkit.stats import percentile

JUNIPER: Final = EXAMPLES / "juniper" / "face" / "portrait.png"
TICKS_PER_FRAME: Final = VIDEO_CLOCK_RATE // FPS
CORES: Final = 2
SIZES: Final = (320, 384, 448, 512)
_SPOKEN: Final = ("aa", "E", "ih", "oh", "ou", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR")


def _sentence(rng: random.Random, seconds: float) -> list[VisemeSpan]:
    spans: list[VisemeSpan] = []
    t = 0.0
    while t < seconds:
        length = rng.uniform(0.06, 0.18)
        name = "sil" if rng.random() < 0.08 else rng.choice(_SPOKEN)
        spans.append((name, t, t + length))
        t += length
    return spans


def _script(animator: Animator, frames: int, seed: int) -> Callable[[int], None]:
    """What happens in the session, as a function of the frame number."""
    rng = random.Random(seed)
    speech: dict[int, list[VisemeSpan]] = {}
    frame = 0
    while frame < frames:
        talk = rng.uniform(1.5, 3.5)
        speech[frame] = _sentence(rng, talk)
        frame += round((talk + rng.uniform(0.8, 2.0)) * FPS)
    cut = 3 * frames // 4

    def step(k: int) -> None:
        if k in speech:
            animator.speak(speech[k], k / FPS)
        if k == frames // 4:
            animator.set_mood("excited", 0.7, 0.6)
        if k == frames // 2:
            animator.set_energy(0.2)
        if k == cut:  # barge-in
            animator.flush(k / FPS)
            animator.set_mood("upset", -0.6, 0.4)
            animator.set_energy(0.9)

    return step


def _stats(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(ordered[len(ordered) // 2], 3),
        "p95": round(percentile(ordered, 95), 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def _session(renderer: PortraitRenderer, *, frames: int, seed: int) -> dict[str, Any]:
    animator = Animator(seed=seed)
    step = _script(animator, frames, seed)
    encoder = Vp8Encoder()
    wall: dict[str, list[float]] = {"state": [], "render": [], "encode": []}
    cpu: dict[str, list[float]] = {"state": [], "render": [], "encode": []}
    encoded_bytes = 0
    cpu0 = time.process_time()
    for k in range(frames):
        step(k)
        w0, c0 = time.perf_counter(), time.thread_time()
        state = animator.state(k / FPS)
        w1, c1 = time.perf_counter(), time.thread_time()
        frame = renderer.render(state, k * TICKS_PER_FRAME)
        w2, c2 = time.perf_counter(), time.thread_time()
        payloads, _ = encoder.encode(frame, force_keyframe=k == 0)
        w3, c3 = time.perf_counter(), time.thread_time()
        encoded_bytes += sum(len(p) for p in payloads)
        if k:  # the first frame is a keyframe and starts the codec
            for key, (a, b, x, y) in {
                "state": (w0, w1, c0, c1),
                "render": (w1, w2, c1, c2),
                "encode": (w2, w3, c2, c3),
            }.items():
                wall[key].append((b - a) * 1000)
                cpu[key].append((y - x) * 1000)
    cpu_ms = (time.process_time() - cpu0) * 1000 / frames
    return {
        **{f"{key}_ms": _stats(values) for key, values in wall.items()},
        **{f"{key}_cpu_ms": _stats(values) for key, values in cpu.items()},
        "cpu_ms_per_frame": round(cpu_ms, 3),
        "kbps": round(encoded_bytes * 8 * FPS / frames / 1000, 1),
    }


def _encode_only(rig: FaceRig, *, frames: int, seed: int) -> dict[str, float]:
    renderer = PortraitRenderer(rig=rig)
    animator = Animator(seed=seed)
    step = _script(animator, frames, seed)
    rendered: list[av.VideoFrame] = []
    for k in range(frames):
        step(k)
        rendered.append(renderer.render(animator.state(k / FPS), k * TICKS_PER_FRAME))
    encoder = Vp8Encoder()
    cpu = []
    for k, frame in enumerate(rendered):
        c0 = time.thread_time()
        encoder.encode(frame, force_keyframe=k == 0)
        if k:
            cpu.append((time.thread_time() - c0) * 1000)
    return _stats(cpu)


def run(
    *,
    portrait: Path | str = JUNIPER,
    size: int = DEFAULT_SIZE,
    seconds: float = 10.0,
    runs: int = 3,
    sizes: Sequence[int] = SIZES,
    seed: int = 1,
) -> dict[str, Any]:
    """Per-frame cost of one avatar session's video at `size`; medians over `runs`."""
    loaded = Portrait.load(portrait)
    t0 = time.perf_counter()
    rig = FaceRig.build(loaded, size=size)
    built_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sprites = rig.warm()
    warm_s = time.perf_counter() - t0
    renderer = PortraitRenderer(rig=rig)
    frames = max(2, round(seconds * FPS))
    per_run = [_session(renderer, frames=frames, seed=seed + r) for r in range(runs)]

    def median(key: str, stat: str | None = None) -> float:
        values = [float(r[key][stat] if stat else r[key]) for r in per_run]
        return round(statistics.median(values), 3)

    def medians(key: str) -> dict[str, float]:
        return {s: median(key, s) for s in ("p50", "p95", "mean")}

    cpu_ms = median("cpu_ms_per_frame")
    by_size: dict[str, dict[str, float]] = {}
    for other in sizes:
        other_rig = rig if other == size else FaceRig.build(loaded, size=other)
        by_size[f"{other}x{other}"] = _encode_only(other_rig, frames=min(frames, 100), seed=seed)
    return {
        "portrait": str(portrait),
        "size": f"{size}x{size}",
        "fps": FPS,
        "frames_per_run": frames,
        "runs": runs,
        "rig_build_s": round(built_s, 3),
        "sprites_warm_s": round(warm_s, 3),
        "sprites": sprites,
        **{
            f"{stage}{kind}": medians(f"{stage}{kind}")
            for kind in ("_ms", "_cpu_ms")
            for stage in ("state", "render", "encode")
        },
        "cpu_ms_per_frame": cpu_ms,
        "kbps": median("kbps"),
        "sessions_per_2_cores": int(CORES * 1000 / (FPS * cpu_ms)),
        "sessions_note": "video only (state + render + VP8 encode); Opus, RTP/SRTP, ICE and "
        "asyncio are not counted, so whole sessions fit fewer",
        "encode_cpu_ms_by_size": by_size,
        "per_run": per_run,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--portrait", type=Path, default=JUNIPER, help="PNG with its .json")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(portrait=args.portrait, size=args.size, seconds=args.seconds, runs=args.runs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
