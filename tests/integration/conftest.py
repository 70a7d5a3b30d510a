import os
import signal

import pytest

from connectors.broker import EmbeddedBroker, free_port
from tests.integration.harness import Worker, send
from tests.support import hospitals


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("broker")) as b:
        yield b


@pytest.fixture
def spawn(tmp_path):
    """Start workers with `spawn(bootstrap)`; any still running at the end is killed, pass or fail, and so
    is the embedded broker of one that started its own (it runs in a session of its own, so killing
    the worker does not end it)."""
    started = []

    def start(bootstrap, **kwargs):
        w = Worker(bootstrap, tmp_path, **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        broker = w.embedded_broker_pid()
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(10)
        if broker is not None:
            try:
                os.kill(broker, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory):
    """A running worker on the module's broker, ready (it has answered a first event)."""
    logs = tmp_path_factory.mktemp("worker")
    w = Worker(broker.bootstrap, logs, extra_env={"YIBAO_METRICS_PORT": str(free_port())})
    try:
        w.wait_started()
        results = send(broker.bootstrap, hospitals(), logs, timeout=90)
        assert len(results) == len(hospitals()), w.log()
        yield w
        assert w.stop() == 0, w.log()
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
