"""Restore an empty broker from the audit archive before the service starts: the embedded broker keeps
its topics in memory, so without this every settlement, balance and answered msgid would be gone
after a stop.

Every archived record is written back to its topic-partition in offset order, with its key, headers
and timestamp, and must land at the offset it had (checked on every acknowledgement): the restored
log is the log, and state is still a function of it (invariant 4). The ledger and clearing states
are then rebuilt from it as after any restart (from snapshots when they belong to this log).

Then the service's consumer group is set where to resume: for each partition its agents consume, the
lower of the offset the group had committed (`positions.json`, recorded by the archiver) and the end
of what the archive holds. Whatever lies between that and what the agents really had done is done
again, which is harmless: the ledger and clearing recognise ops and commands they took (by their
source offsets) and answer a msgid with its stored result, so redone work writes the same bytes again.

A log whose records refer to offsets the archive does not hold (the archiver was killed behind the
worker) is padded with placeholders (`streams.topics.PLACEHOLDER`) up to them, so new records never
reuse an offset the ledger has already seen; every reader skips them.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from connectors.archive import MANIFEST, ArchiveBusy, ArchiveWriter, read_manifest, read_positions, records, verify

from . import codec, topics
from .routing import CLEARING_COMMAND

log = logging.getLogger("yibao.restore")

CHECK_EVERY = 10_000


class RestoreRefused(RuntimeError):
    """The archive cannot be restored (tampered, or the topics are not empty)."""


@dataclass
class Restored:
    recovered: int = 0  # records of segments left open by a crash, sealed first
    records: int = 0
    placeholders: int = 0
    positions: dict[tuple[str, int], int] = field(default_factory=dict)


def newest(archive_dir: Path) -> Path | None:
    """The newest archive of an embedded broker (by its folder's name: `yibao run` names them by their
    start time) under `archive_dir`, or None."""
    lives = sorted(p.parent for p in Path(archive_dir).glob(f"embedded-*/{MANIFEST}"))
    return lives[-1] if lives else None


def _references(topic: str, headers: list, value: bytes, refs: dict[tuple[str, int], int]) -> None:
    """Note the offsets of other partitions a record says its writer has taken (the ledger's and the
    clearing's watermarks)."""
    if topic == topics.CLEARING and not any((h["key"], h["value"]) == CLEARING_COMMAND for h in headers):
        return
    try:
        op = codec.decode_record("ledger_op", value)
    except ValueError:  # foreign bytes on an internal topic: the agent dead-lettered them, they refer to nothing
        return
    if op["via_partition"] >= 0:
        tp, offset = (topics.LEDGER_OPS, op["via_partition"]), op["via_offset"]
    else:
        tp, offset = (op["source_topic"], op["source_partition"]), op["source_offset"]
    refs[tp] = max(refs.get(tp, -1), offset)


async def restore(bootstrap: str, root: Path, kafka: dict, group_id: str, partitions: int,
                  progress: Callable[[int], None] = lambda n: None) -> Restored:
    """Write the archive at `root` into the (empty) topics; `progress` is told the records written so far."""
    try:
        writer = ArchiveWriter(root)  # seals what an archiver killed mid-segment left open
    except ArchiveBusy as e:
        raise RestoreRefused(f"{e}: is a service from before still running?") from None
    writer.close()
    problems, _ = verify(root)
    if problems:
        raise RestoreRefused(f"the archive {root} fails verification, nothing restored:\n  " + "\n  ".join(problems))
    positions = read_positions(root)
    had = (positions or {}).get("partitions")
    if had is not None and had != partitions:
        raise RestoreRefused(f"the archive {root} was written with {had} partitions per topic, the service has "
                             f"{partitions} (YIBAO_PARTITIONS): people would be on other ledger partitions")
    per_tp: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for e in read_manifest(root):
        per_tp[e["topic"], e["partition"]].append(e)
    done = Restored(recovered=writer.recovered)
    ends: dict[tuple[str, int], int] = {}
    refs: dict[tuple[str, int], int] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1 << 20,
                                max_request_size=64 << 20, **kafka)
    await producer.start()
    try:
        for (topic, partition), entries in sorted(per_tp.items()):
            expected = 0
            for entry in entries:
                futures = []
                for r in records(root, entry):
                    if r["offset"] > expected:  # a gap in the original log: kept, so offsets stay aligned
                        futures += await _pad(producer, topic, partition, expected, r["offset"], done)
                    if topic in topics.INTERNAL and not topics.is_filler([(h["key"], h["value"]) for h in r["headers"]]):
                        _references(topic, r["headers"], r["value"], refs)
                    futures.append((r["offset"], await producer.send(
                        topic, r["value"], key=r["key"], partition=partition, timestamp_ms=r["timestamp"],
                        headers=[(h["key"], h["value"]) for h in r["headers"]])))
                    expected = r["offset"] + 1
                    done.records += 1
                    if len(futures) >= CHECK_EVERY:  # acknowledged in steps: a day's segment can be millions
                        await _check(futures, topic, partition)
                        futures = []
                        progress(done.records)
                await _check(futures, topic, partition)
                progress(done.records)
            ends[topic, partition] = expected
        for (topic, partition), last in sorted(refs.items()):
            missing = last + 1 - ends.get((topic, partition), 0)
            if missing > 0:
                log.warning("%s[%d]: the archive ends at %d but its log was read up to %d: %d placeholders",
                            topic, partition, ends.get((topic, partition), 0), last, missing)
                start = ends.get((topic, partition), 0)
                await _check(await _pad(producer, topic, partition, start, last + 1, done), topic, partition)
    finally:
        await producer.stop()
    done.positions = _resume_at(positions, ends)
    await _commit(bootstrap, kafka, group_id, done.positions)
    return done


async def _pad(producer: AIOKafkaProducer, topic: str, partition: int, start: int, stop: int, done: Restored) -> list:
    """Placeholders at offsets [start, stop)."""
    done.placeholders += stop - start
    return [(offset, await producer.send(topic, f"placeholder {topic}[{partition}]@{offset}".encode(),
                                         partition=partition, headers=[topics.PLACEHOLDER]))
            for offset in range(start, stop)]


async def _check(futures: list, topic: str, partition: int) -> None:
    for offset, future in futures:
        meta = await future
        if meta.offset != offset:
            raise RestoreRefused(f"{topic}[{partition}]: the record archived at offset {offset} landed at "
                                 f"{meta.offset}: the topic was not empty, restore only into an empty broker")


def _resume_at(positions: dict | None, ends: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    committed = {(p["topic"], p["partition"]): p["offset"] for p in (positions or {}).get("committed", ())}
    return {tp: min(offset, ends.get(tp, 0)) for tp, offset in committed.items() if tp[0] in topics.CONSUMED}


async def _commit(bootstrap: str, kafka: dict, group_id: str, positions: dict[tuple[str, int], int]) -> None:
    if not positions:
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False, **kafka)
    await consumer.start()
    try:
        tps = {TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in positions.items()}
        consumer.assign(list(tps))
        await consumer.commit(tps)
    finally:
        await consumer.stop()
