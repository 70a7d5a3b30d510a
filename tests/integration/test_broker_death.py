"""If the embedded broker dies, its topics are gone: the worker must stop loudly, not carry on."""
import os
import signal
import time
from pathlib import Path

from streams.service import BROKER_DIED


def _broker_pid(port: str) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"tansu" in cmdline and f"127.0.0.1:{port}".encode() in cmdline:
                return int(proc.name)
    raise AssertionError(f"no embedded broker on port {port}")


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
