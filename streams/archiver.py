"""The archiver: every record of the service's topics (the inputs, the ledger's and the clearing's
logs, every output) appended to the audit archive (`connectors/archive.py`), from the position the
archive holds, by a consumer of its own (no group, nothing committed: the archive is its position).

It runs as its own process (`yibao archive run`; `yibao run` starts one when YIBAO_ARCHIVE_DIR is set),
so it costs the worker no CPU of its own thread. Each batch read is flushed to its open segments; a
stop (SIGTERM/SIGINT, or its parent process gone) reads on until the topics have been quiet for
`IDLE` seconds (`yibao run` stops the worker first, so this reaches the last record), records the
service's committed offsets (`positions.json`) and seals every segment into the manifest. A kill -9
leaves the open segments unsealed: the next start seals their whole blocks and reads on from there.

Checkpoints: every `CHECKPOINT_EVERY` seconds when they moved (and at a stop) the archiver reads the
committed offsets of the service's consumer group, then writes a marker (`topics.MARKER`, skipped by every reader) to
each partition of the internal topics (ledger.ops, clearing.entries) and records those offsets in
`positions.json` once it has archived every marker. An agent commits an offset only after what it
wrote for the records before it is acknowledged, so everything the agents wrote to the internal
topics for work before the recorded offsets came before the markers, and is in the archive: a
restore that resumes the agents there (streams/restore.py) loses no ledger op and no clearing entry,
whenever the archiver was killed.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.archive import ArchiveWriter

from . import topics

log = logging.getLogger("yibao.archiver")
TOPICS = topics.ALL
IDLE = 1.0
CHECKPOINT_EVERY = 5.0
MARKER_WAIT = 30.0  # seconds a stop waits for its markers to come back before it records no checkpoint


async def committed(group: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[tuple[str, int], int]:
    """The group's committed offsets of the partitions it consumes (those it never committed left out)."""
    found = {}
    for tp in tps:
        if tp.topic in topics.CONSUMED:
            offset = await group.committed(tp)
            if offset is not None:
                found[tp.topic, tp.partition] = offset
    return found


@dataclass
class Checkpoint:
    committed: dict[tuple[str, int], int]
    markers: dict[tuple[str, int], int]  # the offset of each marker written

    def covered(self, writer: ArchiveWriter) -> bool:
        return all(writer.next_offset.get(tp, 0) > offset for tp, offset in self.markers.items())


async def checkpoint(found: dict[tuple[str, int], int], producer: AIOKafkaProducer,
                     tps: list[TopicPartition]) -> Checkpoint:
    """Markers written after the committed offsets `found` were read."""
    sent = [(tp, await producer.send(tp.topic, f"marker {os.urandom(8).hex()}".encode(), partition=tp.partition,
                                     headers=[topics.MARKER])) for tp in tps if tp.topic in topics.INTERNAL]
    return Checkpoint(found, {(tp.topic, tp.partition): (await f).offset for tp, f in sent})


async def run(bootstrap: str, root: Path, kafka: dict, stop: asyncio.Event, parent: int | None = None,
              group_id: str = "yibao") -> int:
    """Archive until `stop` is set (or `parent` is no longer this process's parent); the records written."""
    writer = ArchiveWriter(root)
    if writer.recovered:
        log.warning("archive %s: %d records of segments left open by a crash sealed", root, writer.recovered)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_bytes=50_000_000, max_partition_fetch_bytes=20_000_000, **kafka)
    # the service's group, only asked for its committed offsets: it never joins, never commits
    group = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False, **kafka)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **kafka)
    await consumer.start()
    await group.start()
    await producer.start()
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
        group.assign([tp for tp in tps if tp.topic in topics.CONSUMED])
        partitions = len(consumer.partitions_for_topic(topics.LEDGER_OPS))
        pending, last, recorded = None, time.monotonic(), None
        while not stop.is_set() and (parent is None or os.getppid() == parent):
            written += await _poll(consumer, writer)
            if pending is not None and pending.covered(writer):
                writer.write_positions(pending.committed, partitions)
                pending, recorded = None, pending.committed
            if pending is None and time.monotonic() - last >= CHECKPOINT_EVERY:
                last = time.monotonic()
                found = await committed(group, tps)
                if found != recorded:  # an idle service gets no markers
                    pending = await checkpoint(found, producer, tps)
        while (n := await _poll(consumer, writer, IDLE)):  # the last records the stopped service wrote
            written += n
        final, deadline = await checkpoint(await committed(group, tps), producer, tps), time.monotonic() + MARKER_WAIT
        while not final.covered(writer) and time.monotonic() < deadline:
            written += await _poll(consumer, writer)
        if final.covered(writer):
            writer.write_positions(final.committed, partitions)
        else:
            log.error("archive %s: the checkpoint markers did not come back within %ss: positions not recorded",
                      root, MARKER_WAIT)
    finally:
        writer.close()
        await producer.stop()
        await group.stop()
        await consumer.stop()
        log.info("archive %s: %d records written, %d segments in the manifest", root, written, len(writer.entries))
    return written


async def _poll(consumer: AIOKafkaConsumer, writer: ArchiveWriter, wait: float = 0.5) -> int:
    batches = await consumer.getmany(timeout_ms=int(wait * 1000), max_records=10_000)
    written = 0
    for recs in batches.values():
        for r in recs:
            written += writer.add(r.topic, r.partition, r.offset, r.timestamp, r.key, list(r.headers or ()), r.value)
    if batches:
        writer.flush()
    return written
