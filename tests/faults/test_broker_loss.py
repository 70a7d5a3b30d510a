"""The broker dying under the worker.

Guarantees defended here:
- the worker that owns the embedded broker exits with BROKER_DIED within seconds (its topics are gone);
- a worker on a broker it does not own waits for it: it keeps running, retries with a backoff, writes a
  few lines a minute instead of thousands, keeps its metrics endpoint up with `yibao_broker_up 0`, and a
  SIGTERM ends it within seconds (STOP_FORCED: a graceful stop cannot finish without the broker);
- starting the embedded broker prints nothing while it waits for the broker to listen.
"""
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from connectors.broker import free_port
from streams.app import create_app
from streams.transport import RETRY_BACKOFF_MS
from streams.health import BROKER_DIED, STOP_FORCED
from streams.settings import Settings
from tests.integration.harness import ROOT, Worker
from tests.integration.test_broker_death import _broker_pid

OUTAGE = 20.0  # seconds of outage over which the waiting worker's log is counted
# Measured before the fix: about 75 warning/error lines a second (37 of them "Unable connect to node"),
# i.e. some 1,500 in OUTAGE; after it: about 10, almost all in the first second.
MAX_COMPLAINTS = 30
STOP_TIMEOUT = 3.0  # YIBAO_STOP_TIMEOUT given to the waiting worker


def _metric(port: int, name: str) -> float | None:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _until(check, timeout: float, what: str, log=lambda: "") -> float:
    """Seconds until `check()` is true; fails after `timeout`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout:.0f}s: {what}\n{log()[-5000:]}")
        time.sleep(0.1)
    return time.monotonic() - start


def _records(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # the start-up banner is printed, not logged
    return out


def test_broker_death_with_two_workers(spawn, tmp_path):
    owner = spawn(None)  # starts the embedded broker
    bootstrap = owner.wait_started()
    port = free_port()
    waiting = Worker(bootstrap, tmp_path, extra_env={"YIBAO_METRICS_PORT": str(port),
                                                     "YIBAO_STOP_TIMEOUT": str(STOP_TIMEOUT)})
    try:
        waiting.wait_started()
        _until(lambda: "[^Worker]: Ready" in waiting.log(), 60, "the second worker joined", waiting.log)
        assert _metric(port, "yibao_broker_up") == 1

        before = len(waiting.log().splitlines())
        killed = time.monotonic()
        os.kill(_broker_pid(bootstrap.split(":")[1]), signal.SIGKILL)

        assert owner.wait(15) == BROKER_DIED, owner.log()
        owner_exit = time.monotonic() - killed
        print(f"\nowner exited with BROKER_DIED {owner_exit:.1f}s after the broker was killed")
        assert owner_exit < 15

        down = _until(lambda: _metric(port, "yibao_broker_up") == 0, 10, "yibao_broker_up 0", waiting.log)
        print(f"yibao_broker_up read 0 {down:.1f}s after the kill")
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - killed)))
        assert waiting.proc.poll() is None, waiting.log()  # it waits for the broker
        assert _metric(port, "yibao_broker_up") == 0  # the endpoint still answers during the outage

        records = _records("\n".join(waiting.log().splitlines()[before:]))
        complaints = [r for r in records if r["level"] in ("WARNING", "ERROR")]
        unable = [r for r in complaints if r["message"].startswith("Unable connect")]
        print(f"waiting worker over {OUTAGE:.0f}s of outage: {len(complaints)} warning/error lines "
              f"({len(complaints) * 60 / OUTAGE:.0f}/min), {len(unable)} 'Unable connect' lines")
        assert any(r["logger"] == "yibao.metrics" and "broker unreachable" in r["message"] for r in records)
        assert len(complaints) <= MAX_COMPLAINTS, "\n".join(r["message"] for r in complaints[:50])
        assert len(unable) <= 2, "\n".join(r["message"] for r in unable[:20])

        asked = time.monotonic()
        waiting.signal(signal.SIGTERM)
        code = waiting.wait(STOP_TIMEOUT + 10)
        stopped = time.monotonic() - asked
        print(f"waiting worker stopped {stopped:.1f}s after SIGTERM with exit code {code}")
        assert code == STOP_FORCED, waiting.log()[-5000:]
        assert stopped < STOP_TIMEOUT + 5
        assert "the requested stop did not finish within" in waiting.log()
    finally:
        if waiting.proc.poll() is None:
            waiting.proc.kill()
            waiting.proc.wait(10)
        if owner.proc.poll() is None:  # failed before the kill: `spawn` kills the owner, not its broker
            owner.proc.kill()
            owner.proc.wait(10)
            with contextlib.suppress(AssertionError, OSError):
                os.kill(_broker_pid(bootstrap.split(":")[1]), signal.SIGKILL)


def test_worker_kafka_clients_retry_after_the_backoff():
    """aiokafka retries (and so reconnects) after `retry_backoff_ms`, 100 ms unless told: the worker's
    clients are told RETRY_BACKOFF_MS (Faust itself passes none)."""
    async def clients():
        app = create_app(Settings(), "127.0.0.1:1")
        producer = app.producer._new_producer()
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return (producer.client._retry_backoff, producer._sender._retry_backoff,
                    consumer._client._retry_backoff, consumer._retry_backoff_ms, consumer._fetch_max_wait_ms)
        finally:
            await producer.stop()
            await consumer.stop()

    assert RETRY_BACKOFF_MS >= 500
    assert asyncio.run(clients()) == (RETRY_BACKOFF_MS / 1000,) * 3 + (RETRY_BACKOFF_MS, 50)


def test_starting_the_embedded_broker_prints_no_connection_error():
    code = ("from connectors.broker import EmbeddedBroker\n"
            "b = EmbeddedBroker().start()\nprint('up', b.bootstrap)\nb.stop()\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("up 127.0.0.1:")
    assert run.stderr == ""
