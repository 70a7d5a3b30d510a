import pytest

from connectors.broker import EmbeddedBroker
from tests.integration.harness import Worker, send
from tests.support import hospitals


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("broker")) as b:
        yield b


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory):
    """A running worker on the module's broker, ready (it has answered a first event)."""
    logs = tmp_path_factory.mktemp("worker")
    w = Worker(broker.bootstrap, logs)
    w.wait_started()
    results = send(broker.bootstrap, hospitals(), logs, timeout=90)
    assert len(results) == len(hospitals()), w.log()
    yield w
    assert w.stop() == 0, w.log()
