"""Streaming benchmark: events/s of yibao end to end on Kafka, beside its peers, on ONE embedded broker.

    python bench/streaming.py [--events N] [--family N] [--seed S] [--fast-repeat K] [--latency-rates R ...]
                              [--latency-seconds T] [--search-rates R ...] [--search-seconds T]
                              [--p99-limit-ms L] [--rss-settlements N] [--py-spy DIR] [--skip NAME ...]
                              [--quix-python PY] [--worker-log-level L] [--worker-env K=V ...]
                              [--archive-rounds K]

Measured in one run, on the same embedded broker (Tansu), each pipeline on its own fresh topics
(4 partitions), each in its own process (bench/streaming_peers.py holds the peers; yibao, whose
topic names are fixed, gets a fresh broker of the same build for each of its runs):

  raw     aiokafka consume -> produce pipe (getmany, sends not awaited per message, one gather per
          batch): the ceiling a Python consumer/producer gets from this broker;
  faust   the idiomatic Faust ledger: per-event agent, one Table write per event (memory store),
          one output per event, with producer_max_batch_size=1 (what exact table recovery needs on
          this broker, BROKER.md point 1) and, for comparison, without it;
  quix    quix-streams pass-through, `app.dataframe(src).apply(...).to_topic(dst)` (run under
          another interpreter if quix-streams is not importable here: see --quix-python);
  yibao   the real service, `python -m streams.cli run` with KAFKA_BOOTSTRAP_SERVERS set to the
          bench broker and YIBAO_PARTITIONS=4: the outpatient workload's population goes to
          insured.commands first (and its results are awaited), then N settlements to
          settle.requests keyed by psn_no with content-type application/json; timed from the first
          settlement produced to the last of their results read on settle.results (matched by
          inf_refmsgid). Then --family family-drawing purchases (users bound to 1-3 authorizers, their
          bindings sent untimed with the population, so ledger groups have moved and most of these
          are forwarded from the user's home partition to the group's), timed the same way in the
          same worker. Then paced runs, one per rate of --latency-rates (default 1,000 and 2,500
          events/s; --latency-rate R is short for a single one), each --latency-seconds long and
          started once the worker is idle (results are written before their settlements' clearing
          entries are settled, so after a burst the worker goes on working for a while), give
          request->result latency per msgid (produce call -> result read), and the worker's RSS is
          read from /proc. The outpatient settlements are one seeded stream (bench/workload.py) cut
          in order: warm-up, timed, each paced point's, then the spare for the phases below; its
          dates spread over the whole stream, so the timed ones fall early in the year.
          The plain run (the last round's) then goes on, untimed, with what comes after everything
          it measures (so the archive pair's comparison is unchanged):
            the p99 search: paced runs (each on an idle worker, as above) of --search-seconds
            (default 3) at rising --search-rates (100, 250, 500, 1000, 1500, 2000, 3000, 4000,
            6000/s) until p99 reaches --p99-limit-ms (100), the worker falls behind (its answers,
            first to last, come at under 90 % of the rate offered) or the bench cannot offer the
            rate; the highest rate that met the limit is reported (measured after the paced points,
            on a worker and a broker that have taken their bursts and hold their logs);
            the bulk phase: settlements sent as fast as the worker takes them (5,000 at a time, each
            produced while the one before is settled, so no backlog bloats the worker's buffers)
            until the worker has settled --rss-settlements (default 100,000) in all (warm-up, timed,
            family, paced, search and bulk); then its VmRSS, and the bytes it retains per
            settlement: (VmRSS - VmRSS with the population loaded) / settlements.
  yibao-archive  the same yibao run with YIBAO_ARCHIVE_DIR set (a folder in the bench's temp dir):
          the worker starts its archiver process (streams/archiver.py), which writes every record of
          every topic to Avro files as the run goes. yibao and yibao-archive alternate for
          --archive-rounds rounds (AB, BA, ...; default 1: it was 2 before the paced point at 2,500/s,
          the p99 search, the bulk phase and yibao-2 made the bench longer; 2 or more show the
          ratios per round too), the best run of each is reported, and
          the archive pair's ratios (archived ÷ plain: throughput, family drawing, latency p50/p99,
          RSS) are printed against the issue's goal that archiving slow settlement by at most 10 %;
          the archiver's CPU (its own process; also per settlement, beside the worker's, which
          machine noise moves less than wall time) and RSS are shown apart, and the archive is
          checked with `connectors.archive.verify` after the run.
  yibao-2 two yibao workers in one consumer group: the same command, app id and environment
          (YIBAO_PARTITIONS=4), started together on a fresh broker after the one-worker runs, settling
          the same timed settlements (the family, paced and untimed phases are left out). Timing
          starts only once the group is ready, checked at each step: the broker reports it Stable
          with both members (DescribeGroups; this broker leaves each member's assignment out of its
          answer, so who owns what cannot be read there); the first reference event of each of the
          4 partitions is answered; each worker's CPU (/proc) over the population load shows it took
          part (every worker routes its partitions' commands and applies the reference data on its
          ledger partitions; one that owns nothing stays near idle: under a quarter of the busiest
          worker's CPU fails the run); one settlement per ledger partition (the first of each in the
          stream: persons whose home is that partition) is answered; and the group is still Stable
          with the same members. After the timed run the same members must still be there, and
          every timed msgid must have exactly one result, with infcode 0 (read back from
          settle.results; checked for the one-worker runs too). With two producers on a partition
          this broker can make a batch readable after a later one, which a live consumer then
          never gets: the bench's reader fetches such gaps again (see Reader). Reported: events/s
          of 2 workers and 2 ÷ 1, each worker's CPU, the broker's, the bench's and the whole
          machine's (/proc/stat), and worker CPU per settlement: on 2 cores shared with the broker
          and the bench, a second worker gets only the CPU the rest left idle, which those columns
          show.

At the end, a summary table holds the figures issue 11's goals are stated in (yibao ≥ 0.2 × the raw
pipe; p99 ≤ 50 ms at 1,000 settlements/s offered): raw pipe events/s, yibao with one worker and its
ratio to the raw pipe, with two workers and 2 ÷ 1, p50/p99 at each paced rate, the highest rate
whose p99 stayed under the limit, and the worker's VmRSS after the bulk phase with the bytes per
settlement.

Each paced point also splits each request's latency into hops from record timestamps (request sent ->
its ledger.ops record sent by the router -> its result sent by the ledger -> read here). On this
broker a fetch that finds no new data is held for about half its max wait even when data arrives
meanwhile (measured: aiokafka fetch_max_wait_ms=500 gives up to ~250 ms delivery delay, 1500 up to
~750 ms), and Faust's aiokafka driver fixes fetch_max_wait_ms=1500: that shows in every hop. The
bench's own reader waits 10 ms, so it adds little.

Every pipeline answers a warm-up message before anything is timed, so group joins (and Faust's
start-up) are shown in their own column and never timed; yibao's warm-up (one worker or two) is the
group Stable with every worker and the first reference event of each partition answered, and one
settlement per partition is answered after the population, before the timed run. The bench process
produces the timed events (sends not awaited per message, one flush) while it reads the output, for
every pipeline alike: on this 2-core machine the bench, the broker and the pipeline share the cores,
and the CPU columns say who used them. The peers forward the event bytes unchanged; yibao settles
them (decode, validate, route, ledger, encode, plus clearing entries): the peers are baselines doing
no such work.
Nothing here asserts a timing. Ctrl-C or an error stops every process the bench started and the broker.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.workload import family, outpatient, population  # noqa: E402
from connectors.broker import EmbeddedBroker  # noqa: E402
from connectors.client import COMMANDS, JSON_HEADERS, REQUESTS, RESULTS, Outgoing, read_events  # noqa: E402
from streams.routing import home  # noqa: E402
from streams.topics import ensure_topics  # noqa: E402

PEERS = ROOT / "bench" / "streaming_peers.py"
PARTITIONS = 4
CLK_TCK = os.sysconf("SC_CLK_TCK")
JOIN_TIMEOUT = 180.0  # seconds a pipeline may take to answer its warm-up message
DRAIN_TIMEOUT = 600.0  # seconds after the last produce for the last output to arrive
REFMSGID = b'"inf_refmsgid":"'
MSGID = b'"msgid":"'
WALL = time.time() - time.perf_counter()  # perf_counter() + WALL ~ time.time(), to compare with record timestamps


# -- processes ------------------------------------------------------------------------------------

try:  # resolved here, not in the child: between fork and exec the child only makes the call
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the bench dies without cleaning up (even kill -9)."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Procs:
    """Every subprocess the bench starts; `stop_all()` ends them (SIGTERM, then SIGKILL), by pid."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    @staticmethod
    def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        return proc.returncode

    def stop_all(self) -> None:
        for _, proc in reversed(self.procs):
            self.stop(proc, timeout=15)


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (all its threads), from /proc; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError, TypeError):
        return 0.0


def thread_cpu(pid: int | None) -> dict[int, float]:
    """CPU seconds of each thread of a process, by thread id."""
    out = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            out[int(task.name)] = cpu_seconds(f"{pid}/task/{task.name}")
    return out


def children(pid: int) -> list[int]:
    """The child processes of a process (Linux 3.5+: /proc/<pid>/task/<tid>/children)."""
    out = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy (every core, every process), from /proc/stat."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return float("nan")
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK  # all but idle and iowait


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB from /proc/<pid>/status."""
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


# -- Kafka helpers --------------------------------------------------------------------------------

async def create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


def _refmsgid(value: bytes, marker: bytes = REFMSGID) -> str | None:
    i = value.find(marker)
    if i < 0:
        return None
    i += len(marker)
    return value[i:value.find(b'"', i)].decode()


async def op_stamps(bootstrap: str, topic: str = "ledger.ops") -> dict[str, int]:
    """msgid -> timestamp (ms) of its ledger.ops record, i.e. when the router produced it. The Avro
    ledger_op carries the request's bytes verbatim, so the msgid is found without decoding."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=10, fetch_max_bytes=64 << 20, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    out: dict[str, int] = {}
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        idle = time.monotonic()
        while time.monotonic() - idle < 1.5:
            for records in (await consumer.getmany(timeout_ms=200, max_records=20_000)).values():
                idle = time.monotonic()
                for r in records:
                    ref = _refmsgid(r.value, MSGID)
                    if ref is not None:
                        out.setdefault(ref, r.timestamp)
    finally:
        await consumer.stop()
    return out


def holes(first: int, offsets: list[int], end: int) -> list[tuple[int, int]]:
    """The offset ranges [a, b) of first..end-1 that are not in `offsets` (ascending)."""
    out, at = [], first
    for o in offsets:
        if o > at:
            out.append((at, o))
        at = max(at, o + 1)
    if end > at:
        out.append((at, end))
    return out


class Reader:
    """Reads a topic from its beginning in the background: how many records, when the last one came,
    and (track=True) when each result's inf_refmsgid was first seen. fetch_max_wait_ms is small
    because the embedded broker does not answer a waiting fetch when data arrives: it lets it run
    out (measured: delivery delay up to about half the wait), which would add to every latency.

    On this broker a batch can become readable after a later batch of the same partition when two
    producers write to it at once (the two-worker run: both workers write settle.results), and a
    consumer already past it never gets it (seen: 10 results of one batch, in a run of 20,000
    settlements; a fresh consumer read them). So every gap in the offsets a partition delivers is
    fetched again by a second consumer until it is read (`refetched` counts those records); a gap
    still unread after GAP_GIVE_UP seconds is given up (`lost`)."""

    GAP_GIVE_UP = 60.0

    def __init__(self, bootstrap: str, topic: str, track: bool = False) -> None:
        self.bootstrap, self.topic, self.track = bootstrap, topic, track
        self.count = 0
        self.last = 0.0
        self.seen: dict[str, float] = {}  # msgid -> perf_counter() when read
        self.stamps: dict[str, int] = {}  # msgid -> the result record's timestamp (ms, set by its producer)
        self.next: dict[int, int] = {}  # partition -> the offset after the last record delivered
        self.gaps: list[tuple[int, int, int, float]] = []  # (partition, first, end, since) the consumer went past
        self.refetched = 0
        self.lost = 0
        self._tasks: list[asyncio.Task] = []
        self._consumers: list[AIOKafkaConsumer] = []

    def _consumer(self) -> AIOKafkaConsumer:
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=10, max_partition_fetch_bytes=8 << 20,
                             fetch_max_bytes=64 << 20)
        self._consumers.append(c)
        return c

    async def start(self) -> "Reader":
        c = self._consumer()
        await c.start()
        parts: set[int] = set()
        for _ in range(50):
            await c.topics()  # refreshes metadata
            parts = c.partitions_for_topic(self.topic) or set()
            if parts:
                break
            await asyncio.sleep(0.1)
        if not parts:
            raise RuntimeError(f"topic {self.topic} has no partitions")
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        self.next = {tp.partition: offset for tp, offset in (await c.beginning_offsets(tps)).items()}
        filler = self._consumer()
        await filler.start()
        self._tasks = [asyncio.create_task(self._run(c)), asyncio.create_task(self._fill(filler))]
        return self

    def _take(self, records: list, now: float) -> None:
        self.count += len(records)
        self.last = now
        if self.track:
            seen = self.seen
            stamps = self.stamps
            for r in records:
                ref = _refmsgid(r.value)
                if ref is not None and ref not in seen:
                    seen[ref] = now
                    stamps[ref] = r.timestamp

    async def _run(self, c: AIOKafkaConsumer) -> None:
        while True:
            batches = await c.getmany(timeout_ms=100, max_records=20_000)
            now = time.perf_counter()
            for tp, records in batches.items():
                if not records:
                    continue
                first, last = self.next.get(tp.partition, 0), records[-1].offset
                if last - first + 1 != len(records):  # offsets went past some records
                    self.gaps += [(tp.partition, a, b, time.monotonic())
                                  for a, b in holes(first, [r.offset for r in records], last + 1)]
                self.next[tp.partition] = last + 1
                self._take(records, now)

    async def _fill(self, c: AIOKafkaConsumer) -> None:
        """Read the gaps again, oldest first, until each is read or given up."""
        while True:
            if not self.gaps:
                await asyncio.sleep(0.01)
                continue
            partition, first, end, since = self.gaps.pop(0)
            tp = TopicPartition(self.topic, partition)
            c.assign([tp])
            c.seek(tp, first)
            got = [r for r in (await c.getmany(tp, timeout_ms=100, max_records=20_000)).get(tp, [])
                   if first <= r.offset < end]
            if got:
                self.refetched += len(got)
                self._take(got, time.perf_counter())
            left = holes(first, [r.offset for r in got], end)
            if time.monotonic() - since > self.GAP_GIVE_UP:
                self.lost += sum(b - a for a, b in left)
            else:
                self.gaps += [(partition, a, b, since) for a, b in left]
                if not got:
                    await asyncio.sleep(0.01)  # not readable yet

    async def until(self, done, timeout: float, procs: list[subprocess.Popen] = (), what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not done():
            for task in self._tasks:
                if task.done():
                    task.result()  # raises what stopped the reader
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{what}: the pipeline process {proc.pid} exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not done within {timeout:.0f}s")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for c in self._consumers:
            await c.stop()


def all_seen(want: list[str], seen: dict) -> Callable[[], bool]:
    """A cheap repeated check that every msgid of `want` is in `seen` (a cursor, not a full scan)."""
    cursor = 0

    def done() -> bool:
        nonlocal cursor
        while cursor < len(want) and want[cursor] in seen:
            cursor += 1
        return cursor == len(want)
    return done


async def producer(bootstrap: str, linger_ms: int) -> AIOKafkaProducer:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms,
                         max_batch_size=256 * 1024 if linger_ms else 16 * 1024)
    await p.start()
    return p


async def produce_all(p: AIOKafkaProducer, records: list[tuple[str, bytes | None, bytes]], headers=None) -> float:
    """Send every record without awaiting each delivery, then flush; the time the last send was queued."""
    send = p.send
    for topic, key, value in records:
        await send(topic, value, key=key, headers=headers)
    queued = time.perf_counter()
    await p.flush()
    return queued


# -- one measured pipeline ------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    events: int = 0
    ready_s: float = float("nan")  # start -> warm-up answered (group join, start-up): never timed
    timed_s: float = float("nan")
    cpu: float = float("nan")  # pipeline process, cores used during the timed window
    broker_cpu: float = float("nan")
    bench_cpu: float = float("nan")
    rss_mib: float = float("nan")
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.timed_s if self.timed_s > 0 else float("nan")  # nan > 0 is False


class Window:
    """CPU used by the pipeline's processes (`pids`: row.cpu is their sum, row.extra["cpus"] each one's), the
    broker and the bench (and `others`: name -> pid, e.g. the archiver the yibao worker started) between
    `start()` and `stop()`; the busiest threads of the first pipeline process, and how busy the whole machine was
    (row.extra["machine_cpu"], every process on it)."""

    def __init__(self, pids: list[int], broker_pid: int | None, others: dict[str, int] | None = None) -> None:
        self.pids, self.broker_pid, self.others = pids, broker_pid, others or {}

    def _now(self) -> list[float]:
        return [cpu_seconds(pid) for pid in self.pids] + [machine_cpu(), cpu_seconds(self.broker_pid), self_cpu()]

    def start(self) -> None:
        self.t = time.perf_counter()
        self.c = self._now()
        self.threads = thread_cpu(self.pids[0])
        self.o = {name: cpu_seconds(pid) for name, pid in self.others.items()}

    def stop(self, row: Row, end: float | None = None) -> None:
        wall = (end or time.perf_counter()) - self.t
        *cpus, machine, row.broker_cpu, row.bench_cpu = ((b - a) / wall for a, b in zip(self.c, self._now()))
        row.cpu, row.extra["cpus"], row.extra["machine_cpu"] = sum(cpus), cpus, machine
        row.extra["others_cpu"] = {name: (cpu_seconds(pid) - self.o[name]) / wall for name, pid in self.others.items()}
        main = self.pids[0]
        threads = thread_cpu(main)
        # busiest threads first; the main thread's id is the pid
        row.extra["threads"] = sorted((((tid == main), (s - self.threads.get(tid, 0.0)) / wall)
                                       for tid, s in threads.items()), key=lambda x: -x[1])[:3]


class Bench:
    def __init__(self, args, console: Console, broker: EmbeddedBroker, procs: Procs, workdir: Path) -> None:
        self.args, self.console, self.broker, self.procs, self.workdir = args, console, broker, procs, workdir
        self.run_id = uuid.uuid4().hex[:6]

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")

    async def peer(self, name: str, mode: str, records: list[tuple[bytes | None, bytes]], python: str,
                   *flags: str) -> Row:
        row = Row(name, len(records))
        slug = f"bench-{self.run_id}-{name.split()[0]}{'-b1' if '--batch1' in flags else ''}"
        src, dst = f"{slug}-in", f"{slug}-out"
        await create_topics(self.bootstrap, [src, dst])
        reader = await Reader(self.bootstrap, dst).start()
        p = await producer(self.bootstrap, linger_ms=5)
        proc = None
        try:
            started = time.perf_counter()
            proc = self.procs.start(slug, [python, str(PEERS), mode, "--bootstrap", self.bootstrap, "--src", src,
                                           "--dst", dst, "--group", slug, *flags])
            await produce_all(p, [(src, b"warm-up", records[0][1])])
            await reader.until(lambda: reader.count >= 1, JOIN_TIMEOUT, [proc], f"{name} warm-up")
            row.ready_s = time.perf_counter() - started
            self.say(f"{name}: answered its warm-up after {row.ready_s:.1f}s; timing {len(records):,} events")
            window = Window([proc.pid], self.broker.pid)
            target = 1 + len(records)
            window.start()
            t0 = time.perf_counter()
            await produce_all(p, [(src, k, v) for k, v in records])
            await reader.until(lambda: reader.count >= target, DRAIN_TIMEOUT, [proc], name)
            row.timed_s = reader.last - t0
            window.stop(row, reader.last)
            row.rss_mib = memory_mib(proc.pid)[0]
            if reader.count > target:
                row.note = f"{reader.count - target} extra outputs"
            return row
        except Exception as e:
            row.note = f"failed: {e}"
            if proc is not None:
                tail = self.procs.log(slug).strip().splitlines()[-5:]
                self.say(f"[red]{name} failed[/red]: {e}\n  " + "\n  ".join(tail))
            return row
        finally:
            await p.stop()
            await reader.stop()
            if proc is not None:
                Procs.stop(proc)

    async def yibao(self, work: "YibaoWork", title: str = "yibao settlement end to end", tag: str = "yibao",
                    extra_env: dict[str, str] | None = None, workers: int = 1, extras: bool = False) -> tuple[Row, dict]:
        """yibao through the whole sequence: `workers` worker processes in one consumer group, each phase of
        `work` that is not empty (family, paced points), and with `extras` the p99 search and the bulk phase.
        `extra_env` on top of --worker-env (the archive pair sets YIBAO_ARCHIVE_DIR here). Expects a broker
        without the service's topics."""
        args = self.args
        row = Row(title, len(work.timed))
        info: dict = {"workers": workers}
        run = YibaoRun(self, tag, workers, extra_env, info)
        spy = None
        notes: list[str] = []
        try:
            await run.connect()
            started = time.perf_counter()
            run.launch()
            info["worker_log"], info["pid"], info["pids"] = run.names[0], run.pids[0], run.pids

            info["members"] = await run.warm_up(work.pop_lines)
            row.ready_s = time.perf_counter() - started
            for pid in run.pids:  # the archiver a worker started (YIBAO_ARCHIVE_DIR): its CPU is counted apart
                for child in children(pid):
                    if "archive" in cmdline(child):
                        run.others["archiver"] = info["archiver_pid"] = child
            await run.load(work)
            self.say(f"{run.label}: answered its warm-up after {row.ready_s:.1f}s; population of {len(work.pop_lines):,} "
                     f"reference events answered in {info['population'][1]:.1f}s"
                     + (f" (worker CPU {', '.join(f'{c:.1f}' for c in info['population_cpu'])} s)" if workers > 1 else "")
                     + f"; timing {len(work.timed):,} settlements")

            # throughput
            if args.py_spy and workers == 1:
                spy = self._py_spy(run.pids[0], tag)
                info["py_spy_file"] = f"{tag}-worker.txt"
            info["produce_s"] = await run.timed(work.timed, row, "yibao settlements")
            info["rss_stages"][f"+{len(work.timed):,} settled"] = run.rss()
            if spy is not None:
                Procs.stop(spy, signal.SIGINT, timeout=60)
                info["py_spy"] = spy.returncode
            if await run.stable_group() != info["members"]:
                notes.append("the consumer group changed during the timed run")

            # family drawing, right after the plain run: purchases by users bound to authorizers, most of
            # them forwarded from their home partition to their group's
            if work.fam:
                info["family"] = fam_row = Row("yibao family drawing end to end", len(work.fam))
                await run.timed(work.fam, fam_row, "yibao family payments")

            # latency at fixed offered rates, then where the time went, from record timestamps
            if work.paced:
                sent = []
                for rate, records in work.paced:
                    stats, sent_at = await run.paced(rate, records, f"yibao paced run at {rate:,.0f}/s")
                    sent.append((stats, sent_at))
                ops = await op_stamps(self.bootstrap)
                for stats, sent_at in sent:
                    stats["hops"] = hops(sent_at, ops, run.reader)
                info["latency"] = [stats for stats, _ in sent]
            row.rss_mib, info["hwm_mib"] = run.memory()
            row.extra["rss_each"] = [memory_mib(pid)[0] for pid in run.pids]
            if "archiver_pid" in info:
                info["archiver_rss_mib"], info["archiver_hwm_mib"] = memory_mib(info["archiver_pid"])
            if work.paced:
                info["rss_stages"][f"+{sum(len(r) for _, r in work.paced):,} paced"] = row.rss_mib
            if extras:
                await self._extras(run, work, info)
            # what the results were (a sanity check that real settlements ran, not rejects), and whether
            # each timed settlement was answered once, with infcode 0
            info["refetched"], info["lost"] = run.reader.refetched, run.reader.lost
            info["outcomes"] = out = await outcomes(self.bootstrap, run.reader)
            info["timed_check"] = out.check([o.msgid for o in work.timed])
            if info["timed_check"]:
                notes.append(f"timed settlements: {info['timed_check']}")
            row.note = "; ".join(notes)
            return row, info
        except Exception as e:
            row.note = "; ".join(notes + [f"failed: {e}"])
            for name in run.names[:len(run.procs)]:
                tail = self.procs.log(name).strip().splitlines()[-8:]
                self.say(f"[red]{run.label} failed[/red] ({name}): {e}\n  " + "\n  ".join(tail))
            return row, info
        finally:
            if spy is not None:
                Procs.stop(spy, signal.SIGINT, timeout=60)
            await run.close()

    async def _extras(self, run: "YibaoRun", work: "YibaoWork", info: dict) -> None:
        """After the paced points: the search for the highest offered rate whose p99 stays under --p99-limit-ms,
        then the untimed bulk phase that brings the worker to --rss-settlements settlements, and its VmRSS."""
        args = self.args
        used = 0
        if args.search_seconds > 0 and args.search_rates:
            info["search"] = found = await run.search(args.search_rates, args.search_seconds, args.p99_limit_ms / 1000,
                                                      work.spare)
            used = found["used"]
            info["rss_stages"][f"+{used:,} searched"] = run.rss()
        if args.rss_settlements > 0:
            bulk = work.spare[used:used + max(0, args.rss_settlements - run.settled)]
            self.say(f"{run.label}: bulk phase, {len(bulk):,} settlements (untimed) to bring the worker to "
                     f"{run.settled + len(bulk):,}")
            took = await run.bulk(bulk)
            rss = run.rss()
            info["rss_stages"][f"+{len(bulk):,} bulk"] = rss
            base = info["rss_stages"]["population loaded"]
            info["bulk"] = {"n": len(bulk), "s": took, "settled": run.settled, "rss": rss, "base": base,
                            "bytes_per": (rss - base) * 2**20 / run.settled}

    def _py_spy(self, pid: int, tag: str = "yibao") -> subprocess.Popen | None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(exe).exists():
            self.say("[yellow]--py-spy: py-spy not found (pip install py-spy); not profiling[/yellow]")
            return None
        out = Path(self.args.py_spy)
        out.mkdir(parents=True, exist_ok=True)
        return self.procs.start("py-spy", [exe, "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--idle",
                                           "--format", "raw", "-o", str(out / f"{tag}-worker.txt")])


@dataclass
class YibaoWork:
    """What a yibao run sends, cut in `main` from one seeded workload (bench/workload.py), in this order."""
    pop_lines: list[Outgoing]  # reference events (insured.commands), loaded untimed
    warm: list[Outgoing]  # one settlement per ledger partition (the first of each), answered before timing
    timed: list[Outgoing]
    fam_binds: list[Outgoing] = field(default_factory=list)  # family bindings, untimed
    fam: list[Outgoing] = field(default_factory=list)  # family-drawing payments, timed
    paced: list[tuple[float, list[Outgoing]]] = field(default_factory=list)  # (offered events/s, settlements)
    spare: list[Outgoing] = field(default_factory=list)  # for the p99 search, then the bulk phase


def first_per_partition(records: list[Outgoing]) -> list[Outgoing]:
    """The first record of each partition, in their order: the partition is the producer's default
    partitioner's (murmur2 of the key, as `streams.routing.home`); records without a key are passed over."""
    first: dict[int, int] = {}
    for i, o in enumerate(records):
        if o.key is not None:
            first.setdefault(home(o.key.decode(), PARTITIONS), i)
            if len(first) == PARTITIONS:
                break
    return [records[i] for i in sorted(first.values())]


async def group_state(admin: AIOKafkaAdminClient, group: str) -> tuple[str, list[str]]:
    """The consumer group's state and member ids, from DescribeGroups (this broker leaves each member's
    assignment out of its answer, so who owns which partition cannot be read here)."""
    for response in await admin.describe_consumer_groups([group]):
        for error, group_id, state, *_, members in (g[:6] for g in response.groups):
            if group_id == group:
                return (state if not error else f"error {error}"), sorted(m[0] for m in members)
    return "unknown", []


def hops(sent_at: dict[str, float], ops: dict[str, int], reader: "Reader") -> dict[str, tuple[float, float]]:
    """p50 and p99 of each hop of the paced requests, from record timestamps (clients stamp records when they
    send them): request sent -> its ledger.ops record sent by the router -> its result sent -> read here."""
    out: dict[str, list[float]] = {"router": [], "ledger": [], "read": []}
    seen, stamps = reader.seen, reader.stamps
    for m, t in sent_at.items():
        if m in ops and m in stamps:
            out["router"].append(ops[m] / 1000 - (t + WALL))
            out["ledger"].append((stamps[m] - ops[m]) / 1000)
            out["read"].append(seen[m] + WALL - stamps[m] / 1000)
    return {k: (pct(sorted(v), 50), pct(sorted(v), 99)) for k, v in out.items() if v}


class YibaoRun:
    """A yibao run's worker processes on the bench's broker (one, or several in one consumer group, all started
    with the same environment), the reader of settle.results and the bench's two producers (batched, and
    unbatched for the paced sends). Each phase sends its records and waits for all their results."""

    def __init__(self, bench: "Bench", tag: str, workers: int, extra_env: dict[str, str] | None, info: dict) -> None:
        self.bench, self.info = bench, info
        self.env = {"YIBAO_PARTITIONS": str(PARTITIONS), **dict(kv.split("=", 1) for kv in bench.args.worker_env),
                    **(extra_env or {}), "KAFKA_BOOTSTRAP_SERVERS": bench.bootstrap}
        self.group = dict(os.environ, **self.env).get("YIBAO_APP_ID") or "yibao"  # the app id is the group id
        self.label = "yibao" if workers == 1 else f"yibao, {workers} workers"
        self.names = ([f"{tag}-worker-{bench.run_id}"] if workers == 1 else
                      [f"{tag}-worker{i}-{bench.run_id}" for i in range(1, workers + 1)])
        self.procs: list[subprocess.Popen] = []
        self.others: dict[str, int] = {}  # name -> pid of other processes whose CPU is counted apart
        self.reader: Reader | None = None
        self.p = self.paced_p = None
        self.first: list[Outgoing] = []  # the warm-up's reference events
        self.settled = 0  # settlements sent to the workers and answered

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def rss(self) -> float:
        """VmRSS of the workers together, MiB."""
        return sum(memory_mib(pid)[0] for pid in self.pids)

    def memory(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the workers together, MiB."""
        got = [memory_mib(pid) for pid in self.pids]
        return sum(r for r, _ in got), sum(h for _, h in got)

    async def connect(self) -> None:
        bootstrap = self.bench.bootstrap
        await ensure_topics(bootstrap, PARTITIONS)  # the service's own topics, created as it would
        self.reader = await Reader(bootstrap, RESULTS, track=True).start()
        self.p = await producer(bootstrap, linger_ms=5)
        self.paced_p = await producer(bootstrap, linger_ms=0)

    def launch(self) -> None:
        cmd = [sys.executable, "-m", "streams.cli", "run", "--log-level", self.bench.args.worker_log_level]
        self.procs = [self.bench.procs.start(name, cmd, env=self.env) for name in self.names]

    async def until(self, msgids: list[str], what: str, timeout: float = DRAIN_TIMEOUT) -> float:
        """Wait for the result of each msgid; when the last of them was read."""
        seen = self.reader.seen
        await self.reader.until(all_seen(msgids, seen), timeout, self.procs, what)
        return max(seen[m] for m in msgids)

    async def send(self, records: list[Outgoing], what: str, timeout: float = DRAIN_TIMEOUT) -> tuple[float, float]:
        """Produce the records (sends not awaited per message, one flush) and wait for their results: when the
        last send was queued, and when the last result was read."""
        queued = await produce_all(self.p, [(o.topic, o.key, o.value) for o in records], JSON_HEADERS)
        return queued, await self.until([o.msgid for o in records], what, timeout)

    async def stable_group(self) -> list[str]:
        """Wait until the broker reports the group Stable with every worker of the run in it: the member ids."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bench.bootstrap)
        await admin.start()
        try:
            deadline = time.monotonic() + JOIN_TIMEOUT
            while True:
                try:
                    state, members = await group_state(admin, self.group)
                except Exception as e:  # noqa: BLE001 - e.g. no coordinator yet: asked again
                    state, members = f"not described ({type(e).__name__})", []
                if state == "Stable" and len(members) == len(self.procs):
                    return members
                for proc in self.procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"worker {proc.pid} exited with {proc.returncode} before the group was stable")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"consumer group {self.group}: {state} with {len(members)} of "
                                       f"{len(self.procs)} workers after {JOIN_TIMEOUT:.0f}s")
                await asyncio.sleep(0.25)
        finally:
            await admin.close()

    async def warm_up(self, pop_lines: list[Outgoing]) -> list[str]:
        """Every worker in the group, the group Stable (no join or leave pending), then the first reference
        event of each partition answered (each partition's owner consumes); the group's member ids."""
        members = await self.stable_group()
        self.first = first_per_partition(pop_lines)
        await self.send(self.first, "yibao warm-up", JOIN_TIMEOUT)
        return members

    async def load(self, work: YibaoWork) -> None:
        """Untimed: the population (its results awaited before anything else, as `yibao send` does), the family
        bindings if the run has family payments, then one settlement per ledger partition (persons whose home
        is each partition), and the group Stable with the same members as at the warm-up."""
        info = self.info
        cpu = [cpu_seconds(pid) for pid in self.pids]
        first = {o.msgid for o in self.first}
        t = time.perf_counter()
        _, last = await self.send([o for o in work.pop_lines if o.msgid not in first], "yibao population")
        info["population"] = (len(work.pop_lines), last - t)
        # each worker's part in it: every worker routes the commands of its partitions and applies the reference
        # data on its ledger partitions, so one that owns nothing stays near idle
        info["population_cpu"] = used = [cpu_seconds(pid) - c for pid, c in zip(self.pids, cpu)]
        idle = [i + 1 for i, c in enumerate(used) if c < 0.25 * max(used)]
        if idle:
            raise RuntimeError(f"worker {', '.join(map(str, idle))} took no part in the population load "
                               f"(CPU seconds {', '.join(f'{c:.2f}' for c in used)})")
        info["rss_stages"] = {"population loaded": self.rss()}
        if work.fam and work.fam_binds:  # family bindings, untimed: they move ledger groups between partitions
            t = time.perf_counter()
            _, last = await self.send(work.fam_binds, "yibao family bindings")
            info["family_binds"] = (len(work.fam_binds), last - t)
        await self.send(work.warm, "yibao warm-up settlements")
        self.settled += len(work.warm)
        if await self.stable_group() != info["members"]:
            raise RuntimeError("the consumer group changed after the warm-up")

    async def timed(self, records: list[Outgoing], row: Row, what: str) -> float:
        """Records sent at once, timed from the first produce to the last result read: row.timed_s and the CPU
        columns; returns how long the bench took to queue them."""
        window = Window(self.pids, self.bench.broker.pid, self.others)
        window.start()
        t0 = time.perf_counter()
        queued, t1 = await self.send(records, what)
        row.timed_s = t1 - t0
        window.stop(row, t1)
        self.settled += len(records)
        return queued - t0

    async def quiet(self, below: float = 0.15, timeout: float = 60.0) -> float:
        """Wait until every worker is idle (under `below` cores over half a second; an idle worker uses about
        0.05): a result is written before the clearing entries of its settlement are settled, so after a burst
        a worker goes on working for a while. The seconds waited."""
        t = time.perf_counter()
        while time.perf_counter() - t < timeout:
            before = [cpu_seconds(pid) for pid in self.pids]
            await asyncio.sleep(0.5)
            if all(cpu_seconds(pid) - c < below * 0.5 for pid, c in zip(self.pids, before)):
                break
        return time.perf_counter() - t

    async def paced(self, rate: float, records: list[Outgoing], what: str) -> tuple[dict, dict[str, float]]:
        """Records sent at a fixed offered rate, one at a time, once the workers are idle: latency per msgid
        (produce call -> result read); the figures, and when each msgid was sent."""
        seen = self.reader.seen
        waited = await self.quiet()
        p = self.paced_p
        sent_at: dict[str, float] = {}
        row = Row("paced")
        window = Window(self.pids, self.bench.broker.pid, self.others)
        window.start()
        start = time.perf_counter()
        i = 0
        while i < len(records):
            due = min(len(records), int((time.perf_counter() - start) * rate) + 1)
            while i < due:
                o = records[i]
                sent_at[o.msgid] = time.perf_counter()
                await p.send(o.topic, o.value, key=o.key, headers=JSON_HEADERS)
                i += 1
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        offered = time.perf_counter() - start
        await p.flush()
        last = await self.until(list(sent_at), what)
        window.stop(row)
        self.settled += len(records)
        lat = sorted(seen[m] - t for m, t in sent_at.items())
        span = last - min(seen[m] for m in sent_at)  # first answer to last: as long as the sends if the worker keeps up
        return {"rate": rate, "n": len(lat), "offered_rate": len(lat) / offered, "served_rate": len(lat) / (last - start),
                "answer_rate": (len(lat) - 1) / span if span > 0 else float("nan"),
                "p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99), "max": lat[-1], "cpu": row.cpu,
                "others_cpu": row.extra["others_cpu"], "waited": waited}, sent_at

    async def search(self, rates: list[float], seconds: float, limit: float, pool: list[Outgoing]) -> dict:
        """Short paced runs at rising offered rates, until the bench cannot offer the rate (under 90 % of it),
        p99 reaches `limit` (seconds), or the workers fall behind (answers, from the first to the last, came at
        under 90 % of the rate offered: over a short run the tail of the last answers would weigh on the
        answered rate from the first send)."""
        steps, used, best, stop = [], 0, None, ""
        for rate in sorted(rates):
            n = int(rate * seconds)
            if used + n > len(pool):
                stop = f"no settlements left for {rate:,.0f}/s (--rss-settlements sizes the pool)"
                break
            stats, _ = await self.paced(rate, pool[used:used + n], f"p99 search at {rate:,.0f}/s")
            used += n
            steps.append(stats)
            self.bench.say(f"{self.label}: p99 search at {rate:,.0f}/s offered: p50 {stats['p50'] * 1000:.0f} ms, "
                           f"p99 {stats['p99'] * 1000:.0f} ms, answered at {stats['answer_rate']:,.0f}/s")
            if stats["offered_rate"] < 0.9 * rate:
                stop = f"the bench offered only {stats['offered_rate']:,.0f}/s of {rate:,.0f}/s"
            elif stats["p99"] >= limit:
                stop = f"p99 {stats['p99'] * 1000:.0f} ms at {rate:,.0f}/s"
            elif stats["answer_rate"] < 0.9 * stats["offered_rate"]:
                stop = f"the worker fell behind at {rate:,.0f}/s (answered at {stats['answer_rate']:,.0f}/s)"
            if stop:
                break
            best = rate
        return {"steps": steps, "used": used, "best": best, "stop": stop or "every rate met it", "limit": limit,
                "seconds": seconds}

    async def bulk(self, records: list[Outgoing], chunk: int = 5000) -> float:
        """Records sent as fast as the workers take them: each chunk is produced while the one before is being
        settled (the backlog stays under two chunks), then every result awaited; the seconds it took."""
        t = time.perf_counter()
        pending: list[str] = []
        for i in range(0, len(records), chunk):
            part = records[i:i + chunk]
            await produce_all(self.p, [(o.topic, o.key, o.value) for o in part], JSON_HEADERS)
            if pending:
                await self.until(pending, "yibao bulk phase")
            pending = [o.msgid for o in part]
        if pending:
            await self.until(pending, "yibao bulk phase")
        self.settled += len(records)
        return time.perf_counter() - t

    async def close(self) -> None:
        """Stop the producers, the reader and the workers (all at once); exit codes and log-line counts."""
        for client in (self.p, self.paced_p, self.reader):
            if client is not None:
                await client.stop()
        if not self.procs:
            return
        codes = await asyncio.gather(*(asyncio.to_thread(Procs.stop, proc, timeout=60) for proc in self.procs))
        self.info["exit"] = ", ".join(str(c) for c in codes)
        self.info["log_counts"] = counts = Counter()
        for name in self.names:
            counts.update(level for line in self.bench.procs.log(name).splitlines()  # JSON lines, or Faust's text
                          for level in ("WARNING", "ERROR", "CRITICAL")
                          if f'"level": "{level}"' in line or f"[{level}]" in line)


@dataclass
class Outcomes:
    """What the results on settle.results said: counts by outcome, and which requests had more than one
    result or a result with an infcode other than 0."""
    counts: Counter = field(default_factory=Counter)  # "ok" or the error code -> results
    repeated: Counter = field(default_factory=Counter)  # inf_refmsgid -> results beyond its first
    refused: set = field(default_factory=set)  # inf_refmsgids with a result whose infcode is not 0

    def check(self, msgids: list[str]) -> str:
        """'' when each of `msgids` (all answered: the bench waited for them) had exactly one result, with
        infcode 0; else what was wrong."""
        twice = sum(1 for m in msgids if m in self.repeated)
        refused = sum(1 for m in msgids if m in self.refused)
        return ", ".join(([f"{twice:,} answered more than once"] if twice else [])
                         + ([f"{refused:,} not answered with infcode 0"] if refused else []))


async def outcomes(bootstrap: str, reader: Reader) -> Outcomes:
    """infcode / error-code counts over every result read on settle.results (the reader's topic), and the
    requests answered more than once or refused."""
    import json
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=10)
    await consumer.start()
    out = Outcomes()
    counts, answered = out.counts, set()
    try:
        tps = [TopicPartition(RESULTS, p) for p in sorted(consumer.partitions_for_topic(RESULTS) or [])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        n, idle = 0, time.monotonic()
        while n < reader.count and time.monotonic() - idle < 3:
            for records in (await consumer.getmany(timeout_ms=200, max_records=20_000)).values():
                idle = time.monotonic()
                for r in records:
                    n += 1
                    doc = json.loads(r.value)
                    ok = doc.get("infcode") == 0
                    counts["ok" if ok else (doc.get("err_msg") or "?").split(":")[0]] += 1
                    ref = doc.get("inf_refmsgid")
                    if ref in answered:
                        out.repeated[ref] += 1
                    answered.add(ref)
                    if not ok:
                        out.refused.add(ref)
    finally:
        await consumer.stop()
    return out


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


# -- the run --------------------------------------------------------------------------------------

def quix_python(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if importlib.util.find_spec("quixstreams") is not None:
        return sys.executable
    env = os.environ.get("YIBAO_BENCH_QUIX_PYTHON")
    return env or None


async def run(args, console: Console, broker: EmbeddedBroker, procs: Procs, workdir: Path, work: YibaoWork) -> None:
    bench = Bench(args, console, broker, procs, workdir)
    peer_records = [(o.key, o.value) for o in work.timed]
    fast_records = peer_records * args.fast_repeat
    rows: dict[str, Row] = {}
    skip = set(args.skip)
    if "raw" not in skip:
        rows["raw"] = await bench.peer("raw aiokafka pipe", "raw", fast_records, sys.executable)
    if "faust" not in skip:
        rows["faust"] = await bench.peer("faust ledger, max_batch_size=1", "faust", peer_records, sys.executable,
                                         "--batch1")
    if "faust-default" not in skip:
        rows["faust-default"] = await bench.peer("faust ledger, default batching", "faust", peer_records,
                                                 sys.executable)
    if "quix" not in skip:
        qpy = quix_python(args.quix_python)
        if qpy is None:
            rows["quix"] = Row("quix-streams pass-through", note="quix-streams not installed: see --quix-python")
        else:
            rows["quix"] = await bench.peer("quix-streams pass-through", "quix", fast_records, qpy)
    # yibao, and yibao with its archiver (the archive pair), alternating: each run on a fresh broker, since
    # the service's topic names are fixed and a worker would otherwise start on the previous run's logs. The
    # plain variant's last run goes on with the p99 search and the bulk phase (they come after everything it
    # measures, so they change nothing in the pair's comparison).
    variants = [v for v in ("yibao", "yibao-archive") if v not in skip]
    runs: dict[str, list[tuple[Row, dict]]] = {v: [] for v in variants}
    rounds = max(1, args.archive_rounds) if len(variants) == 2 else 1
    for r in range(rounds):
        for v in (variants if r % 2 == 0 else variants[::-1]):
            runs[v].append(await yibao_run(args, console, procs, workdir, v, r, rounds, work,
                                           extras=v == "yibao" and r == rounds - 1))
    # two workers in one consumer group, on the same timed settlements (the one-worker sequence's phases
    # after the timed run are left out)
    if "yibao-2" not in skip:
        runs["yibao-2"] = [await yibao_run(args, console, procs, workdir, "yibao-2", 0, 1,
                                           replace(work, fam_binds=[], fam=[], paced=[]), workers=2)]
    infos: dict[str, dict] = {}
    for v, got in runs.items():
        rows[v], infos[v] = best_run(got)
    extras = next((i for _, i in runs.get("yibao", []) if "search" in i or "bulk" in i), {})
    report(console, args, rows, infos, runs, extras)


YIBAO_TITLES = {"yibao": "yibao settlement end to end",
                "yibao-archive": "yibao settlement end to end, archived (YIBAO_ARCHIVE_DIR)",
                "yibao-2": "yibao settlement end to end, 2 workers in one group"}


async def yibao_run(args, console: Console, procs: Procs, workdir: Path, variant: str, r: int, rounds: int,
                    work: YibaoWork, workers: int = 1, extras: bool = False) -> tuple[Row, dict]:
    """One yibao run on a broker of its own; with the archive (variant yibao-archive), the archive is
    verified after the worker (and with it the archiver) has stopped."""
    label = f"{variant}-{r + 1}"
    log_dir = workdir / f"broker-{label}"
    log_dir.mkdir()
    broker = EmbeddedBroker(log_dir=log_dir)
    await asyncio.to_thread(broker.start)
    try:
        bench = Bench(args, console, broker, procs, workdir)
        extra = {}
        if variant == "yibao-archive":
            extra["YIBAO_ARCHIVE_DIR"] = str(workdir / f"archive-{label}")
        name = f"{variant}, round {r + 1}" if rounds > 1 else variant
        bench.say(f"{name}{f' of {rounds}' if rounds > 1 else ''}: a fresh broker (pid {broker.pid} on {broker.bootstrap})"
                  + (f", archive in {extra['YIBAO_ARCHIVE_DIR']}" if extra else "")
                  + (f", {workers} workers" if workers > 1 else ""))
        row, info = await bench.yibao(work, YIBAO_TITLES[variant], label, extra, workers, extras)
        if extra:
            if "archiver_pid" not in info and not row.note:
                row.note = "no archiver process found"
            info["archive"] = archive_summary(Path(extra["YIBAO_ARCHIVE_DIR"]), procs.log(info["worker_log"]))
        rss = row.extra.get("rss_each", [])
        bench.say(f"{name}: {row.rate:,.0f} settlements/s"
                  + "".join(f", p50 {lat['p50'] * 1000:.0f} ms, p99 {lat['p99'] * 1000:.0f} ms at {lat['rate']:,.0f}/s"
                            for lat in info.get("latency", []))
                  + (f", worker RSS {row.rss_mib:,.0f} MiB" if len(rss) < 2 else
                     f", workers' RSS {' + '.join(f'{m:,.0f}' for m in rss)} MiB")
                  + (f" [red]({row.note})[/red]" if row.note else ""))
        return row, info
    finally:
        await asyncio.to_thread(broker.stop)


def best_run(got: list[tuple[Row, dict]]) -> tuple[Row, dict]:
    """The run with the highest settlement throughput (a failed one only if every run failed)."""
    ok = [g for g in got if not math.isnan(g[0].rate)]
    return max(ok, key=lambda g: g[0].rate) if ok else got[-1]


def archive_summary(root: Path, worker_log: str) -> dict:
    """What the archiver left: records in the manifest, bytes, whether `verify` finds it intact, and the
    count the archiver itself printed when it stopped."""
    from connectors.archive import MANIFEST, read_manifest, verify
    folders = [p.parent for p in root.glob(f"*/{MANIFEST}")] or [root]
    out = {"records": 0, "mb": 0.0, "problems": [], "written": None}
    for folder in folders:
        problems, _ = verify(folder)
        out["problems"] += problems
        out["records"] += sum(e.get("records", 0) for e in read_manifest(folder))
    out["mb"] = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
    for line in worker_log.splitlines():
        if "records written, sealed" in line:
            with contextlib.suppress(ValueError):
                out["written"] = int(line.split(": ", 1)[1].split()[0])
    return out


def report(console: Console, args, rows: dict[str, Row], infos: dict[str, dict],
           runs: dict[str, list[tuple[Row, dict]]] | None = None, extras: dict | None = None) -> None:
    """`infos`: the reported (best) run's info per yibao variant; `extras`: the info of the run that did the p99
    search and the bulk phase (the plain variant's last)."""
    info, extras = infos.get("yibao", {}), extras or {}
    table = Table(title=f"streaming · embedded broker (the peers share one; each yibao run gets a fresh one) · "
                        f"{PARTITIONS} partitions · seed {args.seed}",
                  title_justify="left")
    for col in ("#", "pipeline", "events", "ready after (untimed)", "timed", "events/s", "pipeline CPU",
                "broker CPU", "bench CPU", "RSS MiB"):
        table.add_column(col, justify="left" if col in ("#", "pipeline") else "right")
    numbers = {"raw": "1", "faust": "2", "faust-default": "2'", "quix": "4", "yibao": "3", "yibao-archive": "3a",
               "yibao-2": "3b"}
    for key, row in rows.items():
        ok = not math.isnan(row.timed_s)
        table.add_row(numbers[key], row.name + (f" [red]({row.note})[/red]" if row.note else ""),
                      f"{row.events:,}", f"{row.ready_s:.1f}s" if not math.isnan(row.ready_s) else "—",
                      f"{row.timed_s:.2f}s" if ok else "—", f"{row.rate:,.0f}" if ok else "—",
                      f"{row.cpu:.2f}" if ok else "—", f"{row.broker_cpu:.2f}" if ok else "—",
                      f"{row.bench_cpu:.2f}" if ok else "—", f"{row.rss_mib:,.0f}" if not math.isnan(row.rss_mib) else "—")
    console.print(table)
    console.print("[dim]CPU columns: cores used during the timed window (1.00 = one core busy); "
                  "the machine has " f"{os.cpu_count()}. With 2 workers (3b), pipeline CPU and RSS are "
                  "both workers' together.[/dim]")

    def rate(key: str) -> float:
        return rows[key].rate if key in rows else float("nan")

    y = rate("yibao")
    ratios = [("3 ÷ 1 (yibao ÷ raw pipe)", y / rate("raw")), ("3 ÷ 2 (yibao ÷ faust ledger, batch 1)", y / rate("faust")),
              ("3 ÷ 2' (yibao ÷ faust ledger, default)", y / rate("faust-default")),
              ("3 ÷ 4 (yibao ÷ quix-streams)", y / rate("quix")), ("3b ÷ 3 (2 workers ÷ 1)", rate("yibao-2") / y)]
    console.print("ratios: " + " · ".join(f"{k} [bold]{v:.2f}[/bold]" for k, v in ratios if not math.isnan(v)))

    def verdict(got: float, need: float, label: str) -> str:
        if math.isnan(got) or math.isnan(need):
            return f"{label}: not measured"
        mark = "[green]MET[/green]" if got >= need else f"[red]NOT MET[/red] ({need / got:.1f}× short)"
        return f"{label}: {mark} — yibao {got:,.0f}/s vs {need:,.0f}/s"

    console.print(verdict(y, rate("faust"), "floor (3 ≥ 2: beat the idiomatic Faust ledger)"))
    console.print(verdict(y, 0.5 * rate("raw"), "goal (3 ≥ 0.5 × 1: half the raw pipe)"))
    if "yibao" in rows:
        if "population" in info:
            n, s = info["population"]
            console.print(f"yibao: population {n:,} reference events answered in {s:.1f}s (untimed); "
                          f"the bench queued the {rows['yibao'].events:,} timed settlements in {info['produce_s']:.2f}s")
        fam = info.get("family")
        if fam is not None:
            n, s = info["family_binds"]
            console.print(f"yibao family drawing: [bold]{fam.rate:,.0f}[/bold] payments/s ({fam.events:,} in "
                          f"{fam.timed_s:.2f}s, worker CPU {fam.cpu:.2f} cores), [bold]{fam.rate / y:.2f}×[/bold] plain "
                          f"settlement in the same run; its {n:,} bindings (untimed) answered in {s:.1f}s")
        for lat in info.get("latency", []):
            console.print(f"yibao latency at {lat['rate']:,.0f} events/s offered ({lat['n']:,} settlements, "
                          f"sent at {lat['offered_rate']:,.0f}/s, answered at {lat['served_rate']:,.0f}/s): "
                          f"p50 [bold]{lat['p50'] * 1000:.0f} ms[/bold] · "
                          f"p90 {lat['p90'] * 1000:.0f} ms · p99 [bold]{lat['p99'] * 1000:.0f} ms[/bold] · "
                          f"max {lat['max'] * 1000:.0f} ms · worker CPU {lat['cpu']:.2f} cores · started once the "
                          f"worker was idle, {lat['waited']:.1f}s after the phase before")
            if lat.get("hops"):
                names = {"router": "request sent → its ledger.ops record sent (router)",
                         "ledger": "→ result sent (ledger)", "read": "→ result read by the bench"}
                console.print("  p50 / p99 per hop, from record timestamps: " + " · ".join(
                    f"{names[k]} {a * 1000:.0f} / {b * 1000:.0f} ms" for k, (a, b) in lat["hops"].items()))
        found = extras.get("search")
        if found:
            console.print(f"yibao p99 search ({found['seconds']:g}s paced runs at rising rates, until p99 ≥ "
                          f"{found['limit'] * 1000:.0f} ms or the worker falls behind): " + " · ".join(
                              f"{s['rate']:,.0f}/s p50 {s['p50'] * 1000:.0f} / p99 {s['p99'] * 1000:.0f} ms"
                              for s in found["steps"])
                          + f"; stopped: {found['stop']}; highest rate that met it: [bold]"
                          + (f"{found['best']:,.0f}/s" if found["best"] else "none") + "[/bold]")
        threads = rows["yibao"].extra.get("threads")
        if threads:
            console.print("yibao worker threads during the timed run, cores: " + ", ".join(
                f"{'main' if main else 'other'} {c:.2f}" for main, c in threads))
        if "pid" in info:
            console.print(f"yibao worker (pid {info['pid']}) after the run: VmRSS [bold]{rows['yibao'].rss_mib:,.0f} MiB"
                          f"[/bold], peak VmHWM {info.get('hwm_mib', float('nan')):,.0f} MiB; exit code "
                          f"{info.get('exit')} after SIGTERM; log lines: "
                          + (", ".join(f"{k} {v}" for k, v in info.get("log_counts", {}).items()) or "no warnings"))
        stages = (extras or info).get("rss_stages")
        if stages:
            console.print("yibao worker VmRSS by stage: " + " → ".join(f"{k} {v:,.0f} MiB" for k, v in stages.items()))
        bulk = extras.get("bulk")
        if bulk:
            console.print(f"yibao worker after {bulk['settled']:,} settlements (the last {bulk['n']:,} sent untimed in "
                          f"{bulk['s']:.1f}s): VmRSS [bold]{bulk['rss']:,.0f} MiB[/bold], "
                          f"[bold]{bulk['bytes_per']:,.0f}[/bold] bytes per settlement retained over the "
                          f"{bulk['base']:,.0f} MiB with the population loaded")
        if info.get("outcomes"):
            console.print("yibao results: " + ", ".join(f"{k} {v:,}" for k, v in info["outcomes"].counts.most_common())
                          + "; " + timed_check(info, rows["yibao"].events))
        if args.py_spy and "py_spy" in info:
            samples = Path(args.py_spy) / info.get("py_spy_file", "yibao-worker.txt")
            console.print(f"py-spy samples of the worker during the timed run (which they slow down): {samples} "
                          "(collapsed stacks, idle included; flamegraph.pl or speedscope read them)")
            shares = profile_shares(samples)
            if shares:
                console.print("worker main thread by activity: " + " · ".join(f"{k} {v:.0%}" for k, v in shares))
    if "yibao-2" in rows:
        two_workers_report(console, rows, infos["yibao-2"])
    if runs and runs.get("yibao-archive"):
        archive_report(console, args, runs)
    summary(console, rows, info, extras)


def timed_check(info: dict, n: int) -> str:
    problem = info.get("timed_check")
    return ((f"[red]timed settlements: {problem}[/red]" if problem else
             f"each of the {n:,} timed settlements answered exactly once, with infcode 0")
            + (f" (the bench's reader got {info['refetched']:,} results only by fetching again records the broker "
               f"made readable after later ones)" if info.get("refetched") else "")
            + (f" [red](its reader gave up on {info['lost']:,} records)[/red]" if info.get("lost") else ""))


def two_workers_report(console: Console, rows: dict[str, Row], info: dict) -> None:
    """Two workers ÷ one, who used the cores, and whether the two-worker run settled everything once."""
    two, one = rows["yibao-2"], rows.get("yibao")
    if math.isnan(two.timed_s):
        console.print(f"yibao, 2 workers: [red]{two.note or 'not measured'}[/red]")
        return
    cores = os.cpu_count() or 1

    def cores_used(row: Row) -> str:
        ours = row.cpu + row.broker_cpu + row.bench_cpu
        return (", ".join(f"worker {i} {c:.2f}" for i, c in enumerate(row.extra["cpus"], 1)) if len(row.extra["cpus"]) > 1
                else f"worker {row.cpu:.2f}") + (f", broker {row.broker_cpu:.2f}, bench {row.bench_cpu:.2f}, other "
                                                  f"processes {row.extra['machine_cpu'] - ours:.2f}: the machine "
                                                  f"{row.extra['machine_cpu']:.2f} of {cores}")

    def cpu_ms(row: Row) -> float:  # worker CPU per timed settlement
        return row.cpu * row.timed_s / row.events * 1000

    console.print(f"yibao, 2 workers in one consumer group (3b): [bold]{two.rate:,.0f}[/bold] settlements/s"
                  + (f" vs one worker's {one.rate:,.0f}/s (3): 2 ÷ 1 = [bold]{two.rate / one.rate:.2f}[/bold]"
                     if one else ""))
    console.print(f"  cores during the timed run: 2 workers: {cores_used(two)}"
                  + (f"; 1 worker: {cores_used(one)}" if one else "")
                  + f"; worker CPU per settlement {cpu_ms(two):.2f} ms"
                  + (f" (one worker {cpu_ms(one):.2f} ms)" if one else ""))
    machine = two.extra["machine_cpu"]
    if machine >= 0.85 * cores:
        why = (f"the {cores} cores were full ({machine:.2f} busy): a second worker gets only what the first, the broker, "
               f"the bench and the machine's other processes left idle, and the broker and the bench need more at a "
               f"higher rate")
    else:
        why = (f"the cores were not full ({machine:.2f} of {cores} busy): the workers waited (fetches, the broker's "
               f"delivery) more than they computed")
    console.print(f"  what bounds 2 ÷ 1: {why}")
    console.print(f"  checks: {timed_check(info, two.events)}; the group Stable with both workers before and after the "
                  f"timed run" + (" [red](it changed)[/red]" if "group changed" in two.note else "")
                  + "; each worker took part (CPU seconds in the population load: "
                  + ", ".join(f"{c:.2f}" for c in info.get("population_cpu", [])) + "); results: "
                  + ", ".join(f"{k} {v:,}" for k, v in info["outcomes"].counts.most_common())
                  + f"; exit codes {info.get('exit')}")


RAW_GOAL = 0.2  # issue 11: yibao ≥ 0.2 × the raw pipe
P99_GOAL = (1000.0, 0.050)  # issue 11: p99 ≤ 50 ms at 1,000 settlements/s offered


def summary(console: Console, rows: dict[str, Row], info: dict, extras: dict) -> None:
    """The figures issue 11's goals are stated in, together."""
    def rate(key: str) -> float:
        return rows[key].rate if key in rows else float("nan")

    def num(v: float, fmt: str = ",.0f") -> str:
        return "—" if math.isnan(v) else f"{v:{fmt}}"

    def mark(ok: bool, measured: bool = True) -> str:
        return "" if not measured else "[green]MET[/green]" if ok else "[red]NOT MET[/red]"

    raw, one, two = rate("raw"), rate("yibao"), rate("yibao-2")
    table = Table(title="summary (issue 11)", title_justify="left")
    for col in ("figure", "measured", "goal"):
        table.add_column(col, justify="right" if col == "measured" else "left")
    table.add_row("raw aiokafka pipe (1), events/s", num(raw), "")
    table.add_row("yibao, 1 worker (3), settlements/s", num(one), "")
    table.add_row("3 ÷ 1 (yibao ÷ raw pipe)", num(one / raw, ".3f"),
                  f"≥ {RAW_GOAL}: " + mark(one / raw >= RAW_GOAL, not math.isnan(one / raw)))
    table.add_row("yibao, 2 workers (3b), settlements/s", num(two), "")
    table.add_row("3b ÷ 3 (2 workers ÷ 1)", num(two / one, ".2f"), "")
    for lat in info.get("latency", []):
        goal = ""
        if lat["rate"] == P99_GOAL[0]:
            goal = f"p99 ≤ {P99_GOAL[1] * 1000:.0f} ms: " + mark(lat["p99"] <= P99_GOAL[1])
        table.add_row(f"p50 / p99 at {lat['rate']:,.0f}/s offered",
                      f"{lat['p50'] * 1000:,.0f} / {lat['p99'] * 1000:,.0f} ms", goal)
    found = extras.get("search")
    if found:
        table.add_row(f"highest offered rate with p99 < {found['limit'] * 1000:.0f} ms",
                      f"{found['best']:,.0f}/s" if found["best"] else f"none (from {found['steps'][0]['rate']:,.0f}/s)"
                      if found["steps"] else "—", f"stopped: {found['stop']}")
    bulk = extras.get("bulk")
    if bulk:
        table.add_row(f"worker VmRSS after {bulk['settled']:,} settlements", f"{bulk['rss']:,.0f} MiB",
                      f"population loaded: {bulk['base']:,.0f} MiB")
        table.add_row("retained bytes per settlement", f"{bulk['bytes_per']:,.0f}", "")
    console.print(table)


ARCHIVE_GOAL = 0.10  # the issue: archiving must not slow settlement by more than 10 %


def first_point(info: dict) -> dict:
    """The run's first paced point (at --latency-rates' first rate), what the archive pair compares."""
    return (info.get("latency") or [{}])[0]


def archive_report(console: Console, args, runs: dict[str, list[tuple[Row, dict]]]) -> None:
    """The archive pair: yibao with its archiver ÷ yibao without, best run of each; per-round ratios show the spread."""
    arch = runs["yibao-archive"]
    a_row, a_info = best_run(arch)
    a = a_info.get("archive", {})
    archiver_cpu = a_row.extra.get("others_cpu", {}).get("archiver", float("nan"))
    console.print(f"yibao-archive: archiver pid {a_info.get('archiver_pid', '—')}, "
                  f"{archiver_cpu:.2f} cores during the timed run (worker {a_row.cpu:.2f}, broker {a_row.broker_cpu:.2f}), "
                  f"VmRSS {a_info.get('archiver_rss_mib', float('nan')):,.0f} MiB; archive "
                  f"{a.get('records', 0):,} records, {a.get('mb', 0.0):,.1f} MB "
                  f"(archiver's own count {a.get('written')}), "
                  + ("[green]verified intact[/green]" if a and not a.get("problems") else
                     f"[red]{len(a.get('problems', []))} problems: {'; '.join(a.get('problems', [])[:2])}[/red]"))
    plain = runs.get("yibao", [])
    if not plain:
        return
    p_row, p_info = best_run(plain)

    def lat(info: dict, key: str) -> float:
        return first_point(info).get(key, float("nan"))

    def best(values: list[float]) -> float:
        values = [v for v in values if not math.isnan(v)]
        return min(values) if values else float("nan")

    thr = a_row.rate / p_row.rate
    per_round = [ar.rate / pr.rate for (pr, _), (ar, _) in zip(plain, arch)]
    fam = (p_info.get("family"), a_info.get("family"))
    p50 = best([lat(i, "p50") for _, i in arch]) / best([lat(i, "p50") for _, i in plain])
    p99 = best([lat(i, "p99") for _, i in arch]) / best([lat(i, "p99") for _, i in plain])
    rss = best([r.rss_mib for r, _ in arch]) / best([r.rss_mib for r, _ in plain])
    total = (best([r.rss_mib + i.get("archiver_rss_mib", float("nan")) for r, i in arch])
             / best([r.rss_mib for r, _ in plain]))
    n = len(arch)
    console.print(f"archive cost, 3a ÷ 3 ({len(plain)} + {n} runs alternating, each on a fresh broker; best run of each): "
                  f"throughput [bold]{thr:.3f}[/bold]"
                  + (f" (paired by round: {', '.join(f'{x:.3f}' for x in per_round)})" if len(per_round) > 1 else "")
                  + (f" · family drawing {fam[1].rate / fam[0].rate:.3f}" if fam[0] and fam[1] else "")
                  + f" · latency p50 [bold]{p50:.2f}[/bold] · p99 [bold]{p99:.2f}[/bold]"
                  f" · worker RSS {rss:.2f} (worker + archiver {total:.2f})")
    console.print(f"[dim]ratios above 1 mean more (events/s: better; latency, memory: worse); latency and RSS are "
                  f"each the best of the variant's runs at {args.latency_rates[0]:,.0f} events/s offered (the first "
                  f"paced point).[/dim]")
    saturated = [f"{v} round {k + 1} answered {first_point(i)['served_rate']:,.0f}/s"
                 for v, got in (("yibao", plain), ("yibao-archive", arch)) for k, (_, i) in enumerate(got)
                 if "latency" in i and first_point(i)["served_rate"] < 0.95 * first_point(i)["offered_rate"]]
    if saturated:
        console.print(f"[yellow]the paced run was over capacity ({', '.join(saturated)} of {args.latency_rates[0]:,.0f}/s "
                      "offered): those latencies are queueing time, and their ratio says little about the archive; "
                      "a lower first rate of --latency-rates measures it[/yellow]")
    # CPU per settlement, which machine noise moves less than wall time: what the archiver adds, in its own process
    worker_ms = a_row.cpu * a_row.timed_s / a_row.events * 1000
    archiver_ms = archiver_cpu * a_row.timed_s / a_row.events * 1000
    plain_ms = p_row.cpu * p_row.timed_s / p_row.events * 1000
    console.print(f"CPU per timed settlement: archiver {archiver_ms:.2f} ms beside the worker's {worker_ms:.2f} ms "
                  f"(+{archiver_ms / worker_ms:.0%} of the worker's CPU, in another process: with a core to spare it "
                  f"need not slow settlement, on busy cores it competes); plain worker {plain_ms:.2f} ms")
    slower = 1 - thr
    mark = "[green]MET[/green]" if slower <= ARCHIVE_GOAL else "[red]NOT MET[/red]"
    console.print(f"goal (archiving slows settlement by ≤ {ARCHIVE_GOAL:.0%}: 3a ≥ {1 - ARCHIVE_GOAL:.2f} × 3): {mark} — "
                  f"{a_row.rate:,.0f}/s archived vs {p_row.rate:,.0f}/s plain, slowdown {slower:+.1%}"
                  + (f" (per round {', '.join(f'{1 - x:+.1%}' for x in per_round)})" if len(per_round) > 1 else ""))


# the first activity (in this order) with a frame anywhere in a sample's stack gets the sample: so decoding
# inside the ledger agent counts as decoding, and a debug log call inside a send as logging
ACTIVITIES = (
    ("logging (records built, then dropped)", ("logging/__init__",)),
    ("request decode + validate (pydantic, router and ledger)", ("decode_event (schemas/serde.py",)),
    ("settlement rules", ("Ledger.apply (processors/ledger.py",)),
    ("Avro ledger_op/clearing codecs", ("schemas/avro.py",)),
    ("result encode", ("encode (schemas/serde.py",)),
    ("produce calls (faust → aiokafka send)", ("_produce (streams/agents.py",)),
    ("metrics", ("prometheus_client",)),
    ("agent code, other", ("install.<locals>",)),
    ("aiokafka (fetch parsing, sender, acks)", ("aiokafka/",)),
    ("faust/mode stream machinery", ("faust/", "mode/")),
)


def profile_shares(path: Path) -> list[tuple[str, float]]:
    """Share of the worker's main-thread samples per activity, from py-spy's collapsed stacks."""
    counts: Counter = Counter()
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if any("_bootstrap_inner" in f for f in frames):
            continue  # not the main thread (Faust runs its consumer in a thread of its own)
        if frames[-1].startswith("EpollSelector.select"):
            label = "idle (waiting in epoll)"
        else:
            joined = ";".join(frames)
            label = next((name for name, marks in ACTIVITIES if any(m in joined for m in marks)), "asyncio, other")
        counts[label] += int(n)
    total = sum(counts.values())
    return [(k, v / total) for k, v in counts.most_common()] if total else []


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20_000, help="timed settlements for yibao and Faust (default 20000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--family", type=int, default=5000,
                    help="timed family-drawing payments after the plain run, same worker (default 5000; 0 skips)")
    ap.add_argument("--people", type=int, default=3000, help="population size (default 3000)")
    ap.add_argument("--fast-repeat", type=int, default=5,
                    help="the raw pipe and quix-streams get the events this many times over, so their timed "
                         "window is seconds long too (default 5)")
    ap.add_argument("--latency-rates", type=float, nargs="+", default=[1000.0, 2500.0], metavar="R",
                    help="offered events/s of the paced points, one paced run each, in this order (default 1000 2500; "
                         "the archive pair compares the first)")
    ap.add_argument("--latency-rate", type=float, default=None, metavar="R", help="a single paced point: --latency-rates R")
    ap.add_argument("--latency-seconds", type=float, default=10.0,
                    help="length of each paced point (default 10; 0 skips them)")
    ap.add_argument("--search-rates", type=float, nargs="+", default=[100, 250, 500, 1000, 1500, 2000, 3000, 4000, 6000],
                    metavar="R", help="offered rates of the p99 search, tried from the lowest up (default 100 250 500 "
                                      "1000 1500 2000 3000 4000 6000)")
    ap.add_argument("--search-seconds", type=float, default=3.0,
                    help="length of each paced run of the p99 search (default 3; 0 skips the search)")
    ap.add_argument("--p99-limit-ms", type=float, default=100.0,
                    help="the p99 search looks for the highest rate whose p99 stays under this (default 100)")
    ap.add_argument("--rss-settlements", type=int, default=100_000,
                    help="an untimed bulk phase brings the one-worker run's worker to this many settlements in all, "
                         "then its VmRSS is read (default 100000; 0 skips)")
    ap.add_argument("--quix-python", default=None,
                    help="interpreter with quix-streams for the quix peer (default: this one if it has quixstreams, "
                         "else $YIBAO_BENCH_QUIX_PYTHON)")
    ap.add_argument("--py-spy", metavar="DIR", default=None,
                    help="sample the yibao worker with py-spy during its timed run (slows it), collapsed stacks into DIR")
    ap.add_argument("--worker-log-level", default="warning",
                    help="the yibao worker's --log-level (default warning, as `yibao run`)")
    ap.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the yibao worker, e.g. YIBAO_BATCH_SIZE=2000 (repeatable)")
    ap.add_argument("--archive-rounds", type=int, default=1,
                    help="rounds of the archive pair, alternating yibao and yibao-archive (AB, BA, ...); the best run "
                         "of each is reported (default 1)")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=("raw", "faust", "faust-default", "quix", "yibao", "yibao-archive", "yibao-2"))
    ap.add_argument("--keep-logs", action="store_true", help="keep the broker and process logs (printed path)")
    args = ap.parse_args(argv)
    if args.latency_rate is not None:
        args.latency_rates = [args.latency_rate]

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=140)

    def terminate(signum, frame):  # SIGTERM: unwind like Ctrl-C, through the finally blocks below
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    workdir = Path(tempfile.mkdtemp(prefix="yibao-streaming-bench-"))
    t_build = time.perf_counter()
    pop = population(args.seed, args.people)
    # outpatient settlements, in this order: the warm-up's (one per partition), the timed, each paced point's, and
    # the spare for the p99 search and the bulk phase: as many as the search could use, or as the bulk phase needs
    # to bring the worker to --rss-settlements (family payments count), whichever is more
    paced_sizes = [int(r * args.latency_seconds) for r in args.latency_rates] if args.latency_seconds > 0 else []
    n_paced = sum(paced_sizes)
    n_head = PARTITIONS + args.events + n_paced
    n_search = sum(int(r * args.search_seconds) for r in args.search_rates) if args.search_seconds > 0 else 0
    n_spare = 0 if "yibao" in args.skip else max(n_search, args.rss_settlements - n_head - args.family, 0)
    work = outpatient(args.seed, pop, n_head + n_spare)
    path = workdir / "events.jsonl"
    fam, fam_setup = family(args.seed, pop, args.family) if args.family else (None, [])
    path.write_bytes(b"".join(line + b"\n" for line in pop.setup + work.lines + fam_setup + (fam.lines if fam else [])))
    outgoing, bad = read_events(path)
    if bad:
        raise SystemExit(f"workload has lines that cannot be sent: {bad[:3]}")
    n_pop, n_work, n_binds = len(pop.setup), len(work.lines), len(fam_setup)
    pop_lines, settlements = outgoing[:n_pop], outgoing[n_pop:n_pop + n_work]
    fam_binds, fam_lines = outgoing[n_pop + n_work:n_pop + n_work + n_binds], outgoing[n_pop + n_work + n_binds:]
    assert {o.topic for o in pop_lines + fam_binds} <= {COMMANDS} and {o.topic for o in settlements + fam_lines} <= {REQUESTS}
    warm = first_per_partition(settlements)
    warm_ids = {o.msgid for o in warm}
    rest = [o for o in settlements if o.msgid not in warm_ids]
    paced, at = [], args.events
    for rate, n in zip(args.latency_rates, paced_sizes):
        paced.append((rate, rest[at:at + n]))
        at += n
    plan = YibaoWork(pop_lines, warm, rest[:args.events], fam_binds, fam_lines, paced, rest[at:])
    t_build = time.perf_counter() - t_build
    import aiokafka
    import faust
    console.print(f"yibao streaming bench · python {platform.python_version()} · faust {faust.__version__} · "
                  f"aiokafka {aiokafka.__version__} · {os.cpu_count()} cores · seed {args.seed}")
    console.print(f"workload: {len(pop_lines):,} reference events ({len(pop.people):,} people), "
                  f"{args.events:,} timed + {n_paced:,} paced"
                  + (f" + {len(plan.spare):,} more (p99 search, bulk phase)" if plan.spare else "")
                  + " outpatient settlements, "
                  f"{sum(len(o.value) for o in settlements) / len(settlements):,.0f} bytes each on average, "
                  f"sha256 {work.fingerprint()} (built in {t_build:.1f}s)")

    procs = Procs(workdir)
    broker = EmbeddedBroker(log_dir=workdir)
    try:
        broker.start()
        console.print(f"embedded broker pid {broker.pid} on {broker.bootstrap}; logs in {workdir}")
        asyncio.run(run(args, console, broker, procs, workdir, plan))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping what the bench started[/yellow]")
        raise SystemExit(130)
    finally:
        procs.stop_all()
        broker.stop()
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
