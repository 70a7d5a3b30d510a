"""Prometheus metrics of the service (served on YIBAO_METRICS_PORT when it is set)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_IN = Counter("yibao_events_in_total", "Messages consumed", ["topic"])
EVENTS_OUT = Counter("yibao_events_out_total", "Records produced", ["topic"])
REJECTS = Counter("yibao_rejects_total", "Messages sent to settle.rejected, by reason", ["reason"])
SETTLE_SECONDS = Histogram("yibao_ledger_apply_seconds", "Time to apply one ledger op",
                           buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05))

LAG = Gauge("yibao_consumer_lag", "Records behind the partition's high watermark (approximate on the embedded "
            "broker, whose watermarks can be early for multi-record batches)", ["topic", "partition"])


def serve(port: int, host: str) -> None:
    if port:
        start_http_server(port, addr=host)
