"""`twincast bench bus`: the shape of its result (timings are for the benchmark, not for tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from twincast_bench.bus import _nats_server, run_bus_bench

REPO = Path(__file__).resolve().parents[1]

KEYS = {
    "events",
    "lost",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "mean_ms",
    "rate_per_s",
    "payload_bytes",
    "warmup",
    "nats_server",
    "path",
    "cpu_affinity",
}


def check_shape(result: dict[str, object], *, events: int, warmup: int) -> None:
    assert not KEYS - result.keys(), KEYS - result.keys()
    assert result["events"] == events
    assert result["lost"] == 0
    assert result["warmup"] == warmup
    ms = {k: result[k] for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms")}
    assert all(isinstance(v, float) and v > 0 for v in ms.values()), ms
    p50, p90, p99, p999, top, mean = (float(str(v)) for v in ms.values())
    assert p50 <= p90 <= p99 <= p999 <= top
    assert mean <= top
    assert isinstance(result["rate_per_s"], float)
    assert result["rate_per_s"] > 0
    assert isinstance(result["payload_bytes"], int)
    assert result["payload_bytes"] > 100
    assert str(result["nats_server"]).startswith("nats-server")
    assert "Bus.publish" in str(result["path"])


def test_bench_bus_result_shape() -> None:
    before = os.sched_getaffinity(0)
    result = run_bus_bench(events=300, rate=1000, warmup=50)
    check_shape(result, events=300, warmup=50)
    assert os.sched_getaffinity(0) == before  # pinning for the run is undone
    if len(before) >= 2:
        affinity = result["cpu_affinity"]
        assert isinstance(affinity, dict)
        assert set(affinity["sender"]).isdisjoint(affinity["receiver"])


def test_bench_bus_against_a_running_nats_server(tmp_path: Path) -> None:
    # A server of its own: on the suite's shared one, the services' reply consumers would
    # get the bench's reply chunks too.
    with _nats_server(tmp_path, None) as nats_url:
        result = run_bus_bench(events=100, rate=1000, warmup=10, nats_url=nats_url)
    check_shape(result, events=100, warmup=10)


def test_bench_bus_cli_prints_one_json_object() -> None:
    argv = [sys.executable, "-m", "twincast", "bench", "bus", "--json", "--events", "200"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    check_shape(json.loads(lines[0]), events=200, warmup=500)
