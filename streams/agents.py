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
from collections import Counter, deque

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.policy import PolicyBook

from . import codec, metrics, topics
from .clearing import PartitionClearing
from .health import AGENT_FAILED, Health
from .partitions import PartitionLedgers, Partitioned
from .routing import Record, Source, Validated, reason_class, route
from .settings import Settings
from .snapshots import Snapshots, value_hash

log = logging.getLogger("yibao.agents")

IN_FLIGHT = 8  # batches an agent may have waiting for the broker's acknowledgements


def _headers(message) -> dict[str, bytes]:
    return {k: v for k, v in (message.headers or [])}


async def _produce(app: faust.App, records: list[Record]) -> list[asyncio.Future]:
    """Queue `records` in order; return the futures the broker's acknowledgements complete. Each
    record joins the open batch of its topic partition in aiokafka's producer, so the records of
    successive agent batches share produce requests. (One aiokafka batch built per call and topic
    partition was measured slower: the producer keeps one request in flight, so small batches
    queued one round trip each.)"""
    futures = [await app.producer.send(r.topic, r.key, r.value, r.partition, None, r.headers) for r in records]
    for r in records:
        if r.topic == topics.REJECTED:
            metrics.REJECTS.labels(reason_class(codec.decode_record("rejected", r.value)["reason"])).inc()
    for topic, n in Counter(r.topic for r in records).items():
        metrics.EVENTS_OUT.labels(topic).inc(n)
    return futures


def install(app: faust.App, settings: Settings, book: PolicyBook, bootstrap: str, health: Health) -> PartitionLedgers:
    requests = app.topic(topics.REQUESTS, topics.COMMANDS, key_type=bytes, value_type=bytes)
    ops = app.topic(topics.LEDGER_OPS, key_type=bytes, value_type=bytes)
    entries = app.topic(topics.CLEARING, key_type=bytes, value_type=bytes)
    validated = Validated(4 * settings.batch_size)  # the router's validated requests, for the ledger
    ledgers = PartitionLedgers(book, settings.partitions, settings.answer_days, validated)
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

    async def handle_batch(events, name: str, handle, states: Partitioned | None, flight: deque) -> None:
        """Handle the events in order and queue what they produce; `flight` gets the batch's
        confirmation, which acks the events once the broker has acknowledged every record."""
        m = None
        try:
            records = []
            for event in events:
                m = event.message
                positions[(m.topic, m.partition)] = m.offset + 1
                records += await handle(m)
            for topic, n in Counter(e.message.topic for e in events).items():
                metrics.EVENTS_IN.labels(topic).inc(n)
            futures = await _produce(app, records)
            if snapshots is not None and states is not None and snapshots.due(states.topic, states.next_offset):
                # the state now reflects exactly the records of this batch and those before it: a
                # snapshot is taken only once all of them are acknowledged
                await asyncio.gather(*futures, *flight)
                snapshot(states)
            flight.append(asyncio.ensure_future(confirm(events, futures, name)))
        except BaseException as e:  # noqa: BLE001 - RecursionError, MemoryError, a cancel: never ack this batch
            where = f" on {m.topic}[{m.partition}]@{m.offset}" if m is not None else ""
            health.abort(f"{name} agent failed{where}: {e!r}", AGENT_FAILED)

    async def confirm(events, futures: list, name: str) -> None:
        try:
            await asyncio.gather(*futures)
        except BaseException as e:  # noqa: BLE001 - the broker refused a write: never ack this batch
            health.abort(f"{name} agent: a write was not acknowledged: {e!r}", AGENT_FAILED)
        for event in events:
            event.ack()

    async def pump(stream, name: str, handle, states: Partitioned | None = None) -> None:
        """Handle each batch's messages in order, and go on to the next batch while the broker
        acknowledges what the earlier ones produced (at most IN_FLIGHT batches wait); a batch is
        acked (its offsets become committable) only once all its records are acknowledged.

        The agent takes its events from its channel's queue itself (`batches`) rather than through
        Faust's Stream iterator, which costs a task switch, a processor call and sensor calls per
        event: a batch is what has arrived YIBAO_BATCH_MS after its first event. Handling a batch runs in its
        own task that nothing outside can cancel; a stop waits for it and for every confirmation in
        flight. `handle` turns what one message can get wrong into records (the router
        dead-letters); anything else (a ledger bug, the broker refusing a write) aborts the process
        before the batch is acked: a restart redoes it."""
        flight: deque[asyncio.Future] = deque()
        step = None
        try:
            async for events in batches(app, stream.channel, settings.batch_size, settings.batch_ms / 1000):
                step = asyncio.ensure_future(handle_batch(events, name, handle, states, flight))
                await asyncio.shield(step)
                while flight and (flight[0].done() or len(flight) > IN_FLIGHT):
                    await asyncio.shield(flight[0])
                    flight.popleft()
        except asyncio.CancelledError:
            while unfinished := [f for f in (step, *flight) if f is not None and not f.done()]:
                await asyncio.wait(unfinished)  # the batch being handled adds its confirmation when done
            raise

    async def route_one(m) -> list[Record]:
        if topics.is_filler(m.headers):
            return []
        source = Source(m.topic, m.partition, m.offset, round((m.timestamp or 0) * 1000))
        return route(m.value, m.key, _headers(m), source, settings.partitions, settings.max_message_bytes, validated)

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


async def batches(app: faust.App, channel, most: int, wait: float):
    """The agent's events in batches: each is what its channel's queue holds `wait` seconds after the
    batch's first event (at most `most`; no wait when that many are queued). Measured on the
    embedded broker (2 cores, 20,000 settlements): taking only what was queued at once (no wait)
    made many small batches, and every small record batch costs the broker: 680-780 settlements/s
    with the broker at 0.5 of a core; 5 ms gave 1,008/s, 20 ms 1,379/s (broker 0.17), 50 ms 696/s.

    This is the part of Faust's Stream iterator yibao needs, done once per batch where it can be:
    events fetched before a rebalance (an older generation) or while flow control is paused are
    acknowledged without being handed out, as Faust's streams do; the others are tracked as unacked,
    so a rebalance waits for them, and are acknowledged by the caller after the batch is done."""
    queue = channel.queue
    consumer = app.consumer
    unacked = consumer.unacked
    acked_topic = app.topics.acks_enabled_for
    while True:
        try:
            events = [await channel.__anext__()]
            if queue.qsize() + 1 < most:
                await asyncio.sleep(wait)  # (never a get with a timeout: a cancelled get can lose an event)
            while len(events) < most and not queue.empty():
                events.append(queue.get_nowait())
        except StopAsyncIteration:  # the stream is stopping: what was taken is not acked, so redone
            return
        live = []
        generation, active = app.consumer_generation_id, app.flow_control.is_active()
        for event in events:
            m = event.message
            if not active or m.generation_id != generation:
                event.ack()
                continue
            if not m.tracked and acked_topic(m.topic):
                m.tracked = True
                unacked.add(m)
            live.append(event)
        if live:
            yield live


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
