"""Prometheus metrics of the service (served on YIBAO_METRICS_PORT when it is set).

The endpoint runs in its own thread, so it keeps answering while the broker is unreachable; the
`yibao_broker_up` gauge then reads 0. A small probe thread (`watch_broker`) maintains it by opening a
plain TCP connection to the bootstrap servers every second: 1 when one of them accepts, else 0.
It says whether the broker can be reached, not whether the consumer group is healthy.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("yibao.metrics")

EVENTS_IN = Counter("yibao_events_in_total", "Messages consumed", ["topic"])
EVENTS_OUT = Counter("yibao_events_out_total", "Records produced", ["topic"])
REJECTS = Counter("yibao_rejects_total", "Messages sent to settle.rejected, by reason", ["reason"])
SETTLE_SECONDS = Histogram("yibao_ledger_apply_seconds", "Time to apply one ledger op",
                           buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05))

LAG = Gauge("yibao_consumer_lag", "Records behind the partition's high watermark (approximate on the embedded "
            "broker, whose watermarks can be early for multi-record batches)", ["topic", "partition"])


BROKER_UP = Gauge("yibao_broker_up", "1 when a TCP connection to one of the bootstrap servers succeeds "
                  "(probed every second), 0 while none does")
PROBE_INTERVAL = 1.0  # seconds between broker probes (each connect attempt times out after as long)


def serve(port: int, host: str) -> None:
    if port:
        start_http_server(port, addr=host)


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    """'a:9092,[::1]:9093,b' -> [('a', 9092), ('::1', 9093), ('b', 9092)]"""
    out = []
    for item in filter(None, (i.strip() for i in bootstrap.split(","))):
        host, _, port = item.rpartition(":")
        if not port.isdigit() or host.count(":") > 0 and not host.endswith("]"):  # no port, or a bare IPv6
            host, port = item, "9092"
        out.append((host.strip("[]"), int(port)))
    return out


def broker_reachable(bootstrap: str, timeout: float = PROBE_INTERVAL) -> bool:
    """True when one of the bootstrap servers accepts a TCP connection."""
    for host, port in _hosts(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def watch_broker(bootstrap: str, interval: float = PROBE_INTERVAL) -> threading.Thread:
    """Keep `yibao_broker_up` current from a daemon thread; log once when the broker goes and comes back."""
    def probe() -> None:
        down_since: float | None = None
        while True:
            try:
                up = broker_reachable(bootstrap, timeout=interval)
            except Exception:  # a bootstrap list the resolver chokes on: report down, keep probing
                up = False
            BROKER_UP.set(1 if up else 0)
            if not up and down_since is None:
                down_since = time.monotonic()
                log.warning("broker unreachable: no TCP connection to %s; the worker retries until it is back "
                            "or is stopped", bootstrap)
            elif up and down_since is not None:
                log.warning("broker reachable again at %s after %.0f s", bootstrap, time.monotonic() - down_since)
                down_since = None
            time.sleep(interval)

    thread = threading.Thread(target=probe, name="broker-probe", daemon=True)
    thread.start()
    return thread
