"""The router, ledger and clearing agents: batches in, records out, one await per batch for the produce acks.

Router: `settle.requests` + `insured.commands` -> validate -> `ledger.ops` at the person's home partition
(clearing commands to `clearing.entries`; or `settle.rejected`). Ledger: `ledger.ops` -> `PartitionLedgers`
-> `settle.results`, `clearing.entries`, and `ledger.ops` again for requests forwarded to a ledger group's
partition and the steps of its moves. Clearing: `clearing.entries` -> `PartitionClearing` -> 3201 results
on `settle.results`, statements on `clearing.statements`.
A batch is acknowledged (and its offsets become committable) only after every record it produced
is acknowledged by the broker: nothing is lost on a crash, and what is redone re-produces the same
bytes (the ledger is deterministic and remembers answered msgids).
"""
from __future__ import annotations

import asyncio
import logging
import time

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.policy import PolicyBook

from . import codec, metrics, topics
from .clearing import PartitionClearing
from .health import AGENT_FAILED, Health
from .partitions import PartitionLedgers, Partitioned
from .routing import Record, Source, reason_class, route
from .settings import Settings
from .snapshots import Snapshots, value_hash

log = logging.getLogger("yibao.agents")


def _headers(message) -> dict[str, bytes]:
    return {k: v for k, v in (message.headers or [])}


async def _produce(app: faust.App, records: list[Record]) -> list:
    futures = []
    for r in records:
        futures.append(await app.producer.send(r.topic, r.key, r.value, r.partition, None, r.headers))
        metrics.EVENTS_OUT.labels(r.topic).inc()
        if r.topic == topics.REJECTED:
            metrics.REJECTS.labels(reason_class(codec.decode_record("rejected", r.value)["reason"])).inc()
    return futures


def install(app: faust.App, settings: Settings, book: PolicyBook, bootstrap: str, health: Health) -> PartitionLedgers:
    requests = app.topic(topics.REQUESTS, topics.COMMANDS, key_type=bytes, value_type=bytes)
    ops = app.topic(topics.LEDGER_OPS, key_type=bytes, value_type=bytes)
    entries = app.topic(topics.CLEARING, key_type=bytes, value_type=bytes)
    ledgers = PartitionLedgers(book, settings.partitions, settings.answer_days)
    clearings = PartitionClearing()
    snapshots = Snapshots(settings.snapshot_dir, settings.snapshot_every, settings.policies, book,
                          f"answer_days={settings.answer_days}") \
        if settings.snapshot_dir else None
    positions: dict[tuple[str, int], int] = {}  # next offset to handle, per topic partition

    def snapshot(states: Partitioned) -> None:
        """Snapshot the partitions due: called with every record of the batch acknowledged, so a
        snapshot never reflects a record whose outputs could still be lost."""
        due = snapshots.due(states.topic, states.next_offset)
        snapshots.save(states.topic, [(p, states.next_offset[p], value_hash(states.last_value[p]), states.states[p])
                                      for p in due])

    async def handle_batch(events, name: str, handle, states: Partitioned | None) -> None:
        m = None
        try:
            futures = []
            for event in events:
                m = event.message
                metrics.EVENTS_IN.labels(m.topic).inc()
                positions[(m.topic, m.partition)] = m.offset + 1
                futures += await _produce(app, await handle(m))
            await asyncio.gather(*futures)
            if snapshots is not None and states is not None:
                snapshot(states)
        except BaseException as e:  # noqa: BLE001 - RecursionError, MemoryError, a cancel: never ack this batch
            where = f" on {m.topic}[{m.partition}]@{m.offset}" if m is not None else ""
            health.abort(f"{name} agent failed{where}: {e!r}", AGENT_FAILED)

    async def pump(stream, name: str, handle, states: Partitioned | None = None) -> None:
        """Handle each batch's messages in order; wait once per batch for what they produced.

        Faust acknowledges a batch when this loop asks for the next one, and also when the loop is
        left by an exception or a cancel (the `finally` of `take_events`); a graceful stop then
        commits it. So a batch runs in its own task that nothing outside can cancel, and the loop
        waits for it even when the worker is stopping. `handle` turns what one message can get
        wrong into records (the router dead-letters); anything else (a ledger bug, the broker
        refusing a write) aborts the process inside the batch, before it is acknowledged: a restart
        redoes it."""
        async for events in stream.take_events(settings.batch_size, settings.batch_ms / 1000):
            batch = asyncio.ensure_future(handle_batch(events, name, handle, states))
            try:
                await asyncio.shield(batch)
            except asyncio.CancelledError:
                await asyncio.wait([batch])  # the batch's records are acknowledged before Faust acks it
                raise

    async def route_one(m) -> list[Record]:
        if topics.is_filler(m.headers):
            return []
        source = Source(m.topic, m.partition, m.offset, round((m.timestamp or 0) * 1000))
        return route(m.value, m.key, _headers(m), source, settings.partitions, settings.max_message_bytes)

    async def settle_one(m) -> list[Record]:
        if not ledgers.in_sequence(m.partition, m.offset):
            await rebuild(ledgers, bootstrap, settings, m.partition, m.offset, snapshots)
        if topics.is_filler(m.headers):
            ledgers.took(m.partition, m.offset, m.value)
            return []
        started = time.perf_counter()
        records = ledgers.apply(m.partition, m.offset, m.value, timestamp_ms=round((m.timestamp or 0) * 1000))
        metrics.SETTLE_SECONDS.observe(time.perf_counter() - started)
        return records

    async def clear_one(m) -> list[Record]:
        if not clearings.in_sequence(m.partition, m.offset):
            await rebuild(clearings, bootstrap, settings, m.partition, m.offset, snapshots)
        if topics.is_filler(m.headers):
            clearings.took(m.partition, m.offset, m.value)
            return []
        return clearings.apply(m.partition, m.offset, m.value, timestamp_ms=round((m.timestamp or 0) * 1000),
                               headers=_headers(m))

    @app.agent(requests, name="router")
    async def router(stream):
        await pump(stream, "router", route_one)

    @app.agent(ops, name="ledger")
    async def ledger(stream):
        await pump(stream, "ledger", settle_one, ledgers)

    @app.agent(entries, name="clearing")
    async def clearing(stream):
        await pump(stream, "clearing", clear_one, clearings)

    @app.timer(5.0)
    async def lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            position = positions.get((tp.topic, tp.partition))
            if position is not None:
                metrics.LAG.labels(tp.topic, tp.partition).set(max(0, consumer.highwater(tp) - position))

    @app.on_partitions_revoked.connect
    async def _revoked(app_, revoked: set, **kwargs) -> None:
        for tp in revoked:
            for states in (ledgers, clearings):
                if tp.topic == states.topic:
                    states.drop(tp.partition)

    return ledgers


async def rebuild(states: Partitioned, bootstrap: str, settings: Settings, partition: int, upto: int,
                  snapshots: Snapshots | None = None) -> None:
    """Bring the partition's state to offset `upto` from its log (ledger.ops, clearing.entries): from the
    newest snapshot that belongs to this log (`streams.snapshots`), else from offset 0, emitting nothing.

    Reads until it has seen offset upto-1 itself: no end offset is trusted (BROKER.md, point 1).
    """
    states.reset(partition)
    if upto == 0:
        return
    started = time.monotonic()
    tp = TopicPartition(states.topic, partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", **settings.kafka_kwargs())
    await consumer.start()
    try:
        consumer.assign([tp])
        origin = "offset 0"
        for offset, path in snapshots.candidates(states.topic, partition, upto) if snapshots else ():
            last = await _read_one(consumer, tp, offset - 1, started)
            state = snapshots.load(path, states.topic, partition, value_hash(last))
            if state is not None:
                states.reset(partition, state, offset, last)
                snapshots.loaded(states.topic, partition, offset)
                origin = f"the snapshot at offset {offset}"
                break
        if states.next_offset[partition] == 0:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, states.next_offset[partition])
        replayed = 0
        while states.next_offset[partition] < upto:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
            for m in batch.get(tp, []):
                if m.offset >= upto:
                    break
                if topics.is_filler(m.headers):
                    states.took(partition, m.offset, m.value)
                else:
                    states.apply(partition, m.offset, m.value, emit=False, headers=_headers(m))
                replayed += 1
            _stalled(batch, started, states.topic, partition, states.next_offset[partition], upto)
        log.info("%s[%d] rebuilt from %s and %d records in %.2fs", states.topic, partition, origin, replayed,
                 time.monotonic() - started)
    finally:
        await consumer.stop()


async def _read_one(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, started: float) -> bytes | None:
    """The value of the record at `offset`, read back from the broker."""
    consumer.seek(tp, offset)
    while True:
        batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
        for m in batch.get(tp, []):
            if m.offset == offset:
                return m.value
            if m.offset > offset:  # compacted or deleted away: no record to compare
                return None
        _stalled(batch, started, tp.topic, tp.partition, offset, offset + 1)


def _stalled(batch: dict, started: float, topic: str, partition: int, at: int, upto: int) -> None:
    if not batch and time.monotonic() - started > 120:
        raise RuntimeError(f"{topic}[{partition}] replay stalled at offset {at} before {upto}: the log is incomplete")
