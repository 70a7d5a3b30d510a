"""If the embedded broker dies, its topics are gone: the worker must stop loudly, not carry on."""
import os
import signal
import time

from streams.health import BROKER_DIED
from tests.integration.harness import broker_pid


def _broker_pid(port: str) -> int:
    pid = broker_pid(port)
    assert pid is not None, f"no embedded broker on port {port}"
    return pid


def test_worker_stops_with_its_own_code_when_the_embedded_broker_dies(spawn):
    worker = spawn(None)  # no bootstrap servers: the service starts its own broker
    bootstrap = worker.wait_started()
    time.sleep(1)
    killed = time.monotonic()
    os.kill(_broker_pid(bootstrap.split(":")[1]), signal.SIGKILL)
    assert worker.wait(60) == BROKER_DIED, worker.log()
    took = time.monotonic() - killed
    print(f"\nthe worker exited {took:.1f}s after its broker was killed")
    assert took < 15, worker.log()  # it used to wait 61 s for its consumer to stop
    assert "the embedded broker exited" in worker.log()
