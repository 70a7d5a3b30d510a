"""An offline stand-in for `yibao run` with YIBAO_ARCHIVE_DIR: events sent as `yibao send` would (topic,
key, content type), routed by the real router, settled by the real `PartitionLedgers` and cleared by
the real `PartitionClearing` over in-memory logs, every record archived with `ArchiveWriter`.

Each event is taken to the end (its ops, their forwards, its clearing) before the next is sent: one
of the orders the streaming service may take. The integration test archives the real service.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from connectors.archive import ArchiveWriter
from connectors.client import JSON_HEADERS, read_events
from processors.policy import PolicyBook
from schemas.serde import encode
from streams import topics
from streams.clearing import PartitionClearing
from streams.partitions import PartitionLedgers
from streams.routing import Record, Source, home, route
from tests.support import BOOK

T0 = 1_730_419_200_000  # 2024-11-01T00:00:00Z
MINUTE = 60_000


def archive(events: list[dict | bytes], root: Path, *, partitions: int = 4, t0_ms: int = T0, step_ms: int = MINUTE,
            book: PolicyBook = BOOK) -> Path:
    """Stream the events, event i at time t0 + i·step (what it causes too); archive every record under
    `root`, sealed. Returns `root`."""
    root.parent.mkdir(parents=True, exist_ok=True)
    path = root.parent / f"{root.name}-events.jsonl"
    path.write_bytes(b"".join((e if isinstance(e, bytes) else encode(e)) + b"\n" for e in events))
    outgoing, bad = read_events(path)
    assert not bad, bad
    writer = ArchiveWriter(root)
    logs: dict[tuple[str, int], list[tuple[bytes, dict]]] = defaultdict(list)
    ledgers, clearings = PartitionLedgers(book, partitions), PartitionClearing()
    for p in range(partitions):
        ledgers.reset(p)
        clearings.reset(p)

    def write(r: Record, ts: int) -> None:
        p = r.partition if r.partition is not None else home(r.key.decode(), partitions) if r.key else 0
        offset = len(logs[r.topic, p])
        logs[r.topic, p].append((r.value, dict(r.headers)))
        writer.add(r.topic, p, offset, ts, r.key, list(r.headers), r.value)

    for i, ev in enumerate(outgoing):
        ts = t0_ms + i * step_ms
        p = home(ev.key.decode(), partitions) if ev.key else 0
        offset = len(logs[ev.topic, p])
        write(Record(ev.topic, ev.key, ev.value, JSON_HEADERS, p), ts)
        for r in route(ev.value, ev.key, dict(JSON_HEADERS), Source(ev.topic, p, offset, ts), partitions, 1_000_000):
            write(r, ts)
        busy = True
        while busy:  # each partition takes what it has; what they write may give the others more
            busy = False
            for topic, states in ((topics.LEDGER_OPS, ledgers), (topics.CLEARING, clearings)):
                for q in range(partitions):
                    log = logs[topic, q]
                    while states.next_offset[q] < len(log):
                        value, headers = log[states.next_offset[q]]
                        for r in states.apply(q, states.next_offset[q], value, timestamp_ms=ts, headers=headers):
                            write(r, ts)
                        busy = True
    writer.close()
    return root
