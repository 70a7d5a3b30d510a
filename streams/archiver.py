"""The archiver: every record of the service's topics (the inputs, the ledger's and the clearing's
logs, every output) appended to the audit archive (`connectors/archive.py`), from the position the
archive holds, by a consumer of its own (no group, nothing committed: the archive is its position).

It runs as its own process (`yibao archive run`; `yibao run` starts one when YIBAO_ARCHIVE_DIR is set),
so it costs the worker no CPU of its own thread. Each batch read is flushed to its open segments; a
stop (SIGTERM/SIGINT, or its parent process gone) seals every segment into the manifest. A kill -9
leaves the open segments unsealed: the next start drops them and reads their records again.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.archive import ArchiveWriter

from . import topics

log = logging.getLogger("yibao.archiver")
TOPICS = topics.ALL


async def run(bootstrap: str, root: Path, kafka: dict, stop: asyncio.Event, parent: int | None = None) -> int:
    """Archive until `stop` is set (or `parent` is no longer this process's parent); the records written."""
    writer = ArchiveWriter(root)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_bytes=50_000_000, max_partition_fetch_bytes=20_000_000, **kafka)
    await consumer.start()
    written = 0
    try:
        missing = [t for t in TOPICS if not consumer.partitions_for_topic(t)]
        if missing:
            raise SystemExit(f"topics {', '.join(missing)} do not exist on {bootstrap}: start the service first")
        tps = [TopicPartition(t, p) for t in TOPICS for p in sorted(consumer.partitions_for_topic(t))]
        consumer.assign(tps)
        for tp in tps:
            position = writer.next_offset.get((tp.topic, tp.partition))
            if position is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
        while not stop.is_set() and (parent is None or os.getppid() == parent):
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for recs in batches.values():
                for r in recs:
                    written += writer.add(r.topic, r.partition, r.offset, r.timestamp, r.key, list(r.headers or ()),
                                          r.value)
            if batches:
                writer.flush()
    finally:
        writer.close()
        await consumer.stop()
        log.info("archive %s: %d records written, %d segments in the manifest", root, written, len(writer.entries))
    return written
