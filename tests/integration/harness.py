"""Integration harness: the real embedded broker, the worker as a subprocess, and Kafka helpers."""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.client import Outgoing, read_events, send_events
from connectors.files import settle_lines
from processors.ledger import Ledger
from schemas.serde import encode
from tests.support import BOOK, line, settlement

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count(1)


class Worker:
    """`yibao run` against a given broker, as a separate process (so it can be SIGTERMed or killed)."""

    def __init__(self, bootstrap: str | None, log_dir: Path, partitions: int = 4, extra_env: dict | None = None) -> None:
        self.bootstrap = bootstrap
        self.metrics_port = int((extra_env or {}).get("YIBAO_METRICS_PORT", 0))
        self.log_path = log_dir / f"worker-{next(_ids)}.log"
        env = dict(os.environ, YIBAO_PARTITIONS=str(partitions), PYTHONUNBUFFERED="1",
                   **{"YIBAO_METRICS_PORT": "0", **(extra_env or {})})  # make exports 9464 for `make run`
        if bootstrap:
            env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        else:
            env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "run", "--log-level", "info"],
                                     cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_started(self, timeout: float = 60) -> str:
        """Wait until the worker printed its broker; return the bootstrap address."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.log().splitlines():
                if text.startswith("yibao worker: broker "):
                    return text.split()[3]
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise TimeoutError(f"worker did not start:\n{self.log()}")

    def embedded_broker_pid(self) -> int | None:
        """The pid of the broker this worker started itself (none when it was given one, or gone)."""
        if self.bootstrap is not None:
            return None
        port = next((line.split()[3].split(":")[1] for line in self.log().splitlines()
                     if line.startswith("yibao worker: broker ")), None)
        return broker_pid(port) if port else None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.wait(10)


def broker_pid(port: str) -> int | None:
    """The embedded broker (tansu) process listening on 127.0.0.1:`port`, if one runs."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"tansu" in cmdline and f"127.0.0.1:{port} ".encode() in cmdline + b" ":
                return int(proc.name)
    return None


def outgoing(events: list[dict | bytes], tmp: Path) -> list[Outgoing]:
    path = tmp / f"events-{next(_ids)}.jsonl"
    path.write_bytes(b"".join((e if isinstance(e, bytes) else encode(e)) + b"\n" for e in events))
    return read_events(path)[0]


def send(bootstrap: str, events: list[dict | bytes], tmp: Path, timeout: float = 120) -> dict[str, bytes]:
    """Send the events; the first result of each msgid."""
    sent = outgoing(events, tmp)
    results = asyncio.run(send_events(bootstrap, sent, timeout, {}))
    return {ev.msgid: r for ev, r in reversed(list(zip(sent, results))) if r is not None}


def offline(events: list[dict | bytes]) -> list[bytes]:
    """The results `yibao settle` gives for the same events, encoded."""
    lines = [e if isinstance(e, bytes) else encode(e) for e in events]
    return [encode(item.result) for item in settle_lines(lines, Ledger(BOOK))]


async def _produce(bootstrap: str, records: list[tuple[str, bytes | None, bytes, list]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=20_000_000)
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send(topic, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


def produce(bootstrap: str, records: list[tuple[str, bytes | None, bytes, list]]) -> None:
    asyncio.run(_produce(bootstrap, records))


async def _read_all(bootstrap: str, topic: str, idle: float) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_bytes=50_000_000, max_partition_fetch_bytes=20_000_000)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out, last = [], time.monotonic()
        while time.monotonic() - last < idle:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                out.extend(records)
                last = time.monotonic()
        return out
    finally:
        await consumer.stop()


def read_all(bootstrap: str, topic: str, idle: float = 2.0) -> list:
    """Every record of a topic (reads until `idle` seconds pass without a new one)."""
    return asyncio.run(_read_all(bootstrap, topic, idle))


def results_by_msgid(bootstrap: str, idle: float = 1.0) -> dict[str, set[bytes]]:
    """Every distinct result on settle.results so far, by the msgid it answers (JSON results)."""
    seen: dict[str, set[bytes]] = {}
    for r in read_all(bootstrap, "settle.results", idle=idle):
        seen.setdefault(json.loads(r.value)["inf_refmsgid"], set()).add(r.value)
    return seen


def wait_for_results(bootstrap: str, msgids: list[str], at_least: int, timeout: float = 120, idle: float = 1.0,
                     workers: tuple = ()) -> dict[str, set[bytes]]:
    """Poll until `at_least` of `msgids` are answered, the timeout passes, or every one of `workers` exited."""
    deadline = time.monotonic() + timeout
    while True:
        seen = results_by_msgid(bootstrap, idle)
        if sum(m in seen for m in msgids) >= at_least or time.monotonic() > deadline \
                or (workers and all(w.proc.poll() is not None for w in workers)):
            return seen
        time.sleep(0.2)


def mixed_bills(people: list[dict], n: int, tag: str) -> list[dict]:
    """n settlements over the people: outpatient and inpatient, levels 1-3, account on and off, Nov-Dec."""
    return [settlement([line(f"{50 + i % 400}.{i % 97:02d}"), line("30", "02"), line("12", "03")],
                       psn_no=people[i % len(people)]["input"]["psn_no"], msgid=f"{tag}{i:06d}",
                       level=1 + i % 3, acct_used_flag=str(i % 2), med_type="21" if i % 10 == 0 else "11",
                       day=f"2024-{11 + (i * 2) // n:02d}-{1 + i % 28:02d}")
            for i in range(n)]
