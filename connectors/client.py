"""A Kafka client for people and scripts: send a file of events and wait for their results; tail a topic.

`yibao send` keys each event by `psn_no` (institutions by `fixmedins_code`) so one person's events
stay in order, sends reference data to `insured.commands` and settlements to `settle.requests`, and
waits for the results of everything sent before it switches topic (the two topics are consumed
independently, so that barrier keeps a person's record ahead of their first settlement).
"""
from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.topics import COMMANDS, REQUESTS, RESULTS

REFERENCE = ("person", "institution", "2503", "2504", "accumulators")  # what `yibao run --population` sends first
COMMAND_INFNOS = (*REFERENCE, "acct_credit", "acct_bind", "acct_unbind", "acct_contrib", "acct_query",
                  "remote_filing", "remote_filing_cancel", "clearing_close", "manual_claim")  # sent to insured.commands
JSON_HEADERS = [("content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class Outgoing:
    lineno: int
    topic: str
    key: bytes | None
    value: bytes
    msgid: str | None
    reference: bool = False  # reference data (people, institutions, filings, imports)


def read_events(path: Path) -> tuple[list[Outgoing], list[tuple[int, str]]]:
    """The file's events with their topic and key; lines that cannot be sent, with the reason."""
    out, bad = [], []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as e:
            bad.append((lineno, f"not JSON: {e}"))
            continue
        if not isinstance(doc, dict):
            bad.append((lineno, "not a JSON object"))
            continue
        infno = doc.get("infno")
        inp = doc.get("input") if isinstance(doc.get("input"), dict) else {}
        data = inp.get("data") if isinstance(inp.get("data"), dict) else inp
        key = data.get("psn_no") or (inp.get("fixmedins_code") if infno == "institution" else None)
        msgid = doc.get("msgid") if isinstance(doc.get("msgid"), str) else None
        topic = COMMANDS if infno in COMMAND_INFNOS else REQUESTS
        out.append(Outgoing(lineno, topic, str(key).encode() if key else None, raw, msgid, infno in REFERENCE))
    return out, bad


class ResultWaiter:
    """Reads settle.results and keeps, per awaited msgid, the results in the order they arrive."""

    def __init__(self, bootstrap: str, **kafka) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                         **kafka)
        self.results: dict[str, list[bytes]] = {}

    async def start(self) -> None:
        await self.consumer.start()
        parts = self.consumer.partitions_for_topic(RESULTS) or set()
        tps = [TopicPartition(RESULTS, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        # End offsets may be early on the embedded broker, so a few older results can be read too:
        # harmless for fresh msgids, and a re-sent request's result is the one it got before.
        await self.consumer.seek_to_end(*tps)

    async def wait(self, wanted: Counter, deadline: float, on_result: Callable[[], None] = lambda: None) -> None:
        """Read until each msgid in `wanted` has as many results as it was sent times."""
        missing = {m for m, n in wanted.items() if len(self.results.get(m, ())) < n}
        while missing and time.monotonic() < deadline:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            for r in (r for records in batches.values() for r in records):
                try:
                    ref = json.loads(r.value).get("inf_refmsgid")
                except (ValueError, AttributeError):
                    continue
                if ref in missing:
                    got = self.results.setdefault(ref, [])
                    got.append(r.value)
                    on_result()
                    if len(got) >= wanted[ref]:
                        missing.discard(ref)

    async def stop(self) -> None:
        await self.consumer.stop()


async def send_events(bootstrap: str, events: list[Outgoing], timeout: float, kafka: dict,
                      on_result: Callable[[], None] = lambda: None) -> list[bytes | None]:
    """Produce the events in order; return each event's result, in the same order (None: none came
    within the timeout, or the event has no msgid). A msgid sent twice gets its two results in turn."""
    waiter = ResultWaiter(bootstrap, **kafka)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **kafka)
    await waiter.start()
    await producer.start()
    try:
        deadline = time.monotonic() + timeout
        wanted: Counter = Counter()
        topic = None
        for ev in events:
            if topic is not None and ev.topic != topic:
                await producer.flush()
                await waiter.wait(wanted, deadline, on_result)
            topic = ev.topic
            await producer.send(ev.topic, ev.value, key=ev.key, headers=JSON_HEADERS)
            if ev.msgid:
                wanted[ev.msgid] += 1
        await producer.flush()
        await waiter.wait(wanted, deadline, on_result)
    finally:
        await producer.stop()
        await waiter.stop()
    taken: Counter = Counter()
    ordered: list[bytes | None] = []
    for ev in events:
        got = waiter.results.get(ev.msgid, []) if ev.msgid else []
        ordered.append(got[taken[ev.msgid]] if taken[ev.msgid] < len(got) else None)
        taken[ev.msgid] += 1
    return ordered


async def send_reference_data(bootstrap: str, path: Path, settings) -> int:
    """Produce the reference-data events of a file (people, institutions, filings, imports)."""
    events, _ = read_events(path)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **settings.kafka_kwargs())
    await producer.start()
    try:
        sent = 0
        for ev in events:
            if ev.reference:
                await producer.send(ev.topic, ev.value, key=ev.key, headers=JSON_HEADERS)
                sent += 1
        await producer.flush()
        return sent
    finally:
        await producer.stop()


async def tail(bootstrap: str, topic: str | Sequence[str], from_beginning: bool, count: int | None, kafka: dict,
               show: Callable[[object], None], idle_timeout: float | None = None) -> int:
    """Show each record of a topic (or of several: `yibao replay` reads them all), from the beginning or
    the end, until `count` records or `idle_timeout` seconds without one. No end offset is trusted
    (BROKER.md point 1): the idle timeout is how a reader knows it has read what there is."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **kafka)
    await consumer.start()
    seen = 0
    try:
        names = [topic] if isinstance(topic, str) else list(topic)
        tps = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        last = time.monotonic()
        while count is None or seen < count:
            batches = await consumer.getmany(timeout_ms=500)
            if not batches and idle_timeout is not None and time.monotonic() - last > idle_timeout:
                break
            for r in (r for records in batches.values() for r in records):
                if count is not None and seen >= count:
                    break
                show(r)
                seen += 1
                last = time.monotonic()
        return seen
    finally:
        await consumer.stop()
