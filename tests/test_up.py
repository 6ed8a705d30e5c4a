"""`twincast up` starts everything and stops everything: no orphans, whatever the signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from twincast.services import SERVICES


def _start(state_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TWINCAST_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "twincast", "up", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _wait_up(process: subprocess.Popen[str], timeout_s: float = 180) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("twincast up exited early:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("Or ask from here"):
            assert any("/join/" in seen for seen in lines), "no join link printed"
            return lines
    raise AssertionError("twincast up did not come up:\n" + "".join(lines))


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[psutil.Process], Path]]:
    process = _start(tmp_path)
    try:
        _wait_up(process)
        children = psutil.Process(process.pid).children(recursive=True)
        yield process, children, tmp_path
    finally:
        if process.poll() is None:
            for p in psutil.Process(process.pid).children(recursive=True):
                p.kill()
            process.kill()
        process.wait()


def _gone(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_up_serves_then_stops_cleanly(
    up: tuple[subprocess.Popen[str], list[psutil.Process], Path], sig: signal.Signals
) -> None:
    process, children, state_dir = up
    names = " ".join(" ".join(p.cmdline()) for p in children)
    assert "nats-server" in names
    assert "valkey-server" in names
    for service in SERVICES:
        assert f"twincast run {service}" in names

    run = json.loads((state_dir / "run.json").read_text())
    for url in run["services"].values():
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
            assert response.status == 200
    with urllib.request.urlopen(run["gateway"], timeout=5) as response:
        assert "AI twin" in response.read().decode()

    process.send_signal(sig)
    assert process.wait(timeout=60) == 0
    assert _gone(children, timeout_s=5) == []
    assert not (state_dir / "run.json").exists()


def test_children_die_with_a_killed_parent(
    up: tuple[subprocess.Popen[str], list[psutil.Process], Path],
) -> None:
    process, children, _ = up
    process.kill()
    process.wait()
    assert _gone(children, timeout_s=30) == []
