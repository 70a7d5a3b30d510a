"""Restart benchmark: the time a ledger partition takes to rebuild its state, by log length, replaying
its whole log from offset 0 (before snapshots) vs loading a snapshot and replaying the tail after it.

    python bench/restart.py [--sizes N ...] [--every E] [--rounds R] [--once-above S] [--seed S]
                            [--people P] [--workload mixed|outpatient] [--dir D] [--keep] [--cpu C]

Offline, no broker: one `ledger.ops` partition's log is built as the service's router would write it
(the `bench/workload.py` population, then `mixed` or `outpatient` settlements, each passed through
`streams.routing.route` with one partition, as tests/test_snapshots.py does), exactly N ops long.
The log is built in a forked child (so its garbage never counts in this process's memory) and read
back into memory before anything is timed. For each size, in alternating rounds (the order rotates
each round, so machine noise touches every measurement alike; the best run counts, the median and the
spread are shown):

  replay from 0   `PartitionLedgers.apply(0, offset, value, emit=False)` for every op, on a fresh
                  state: what every start and rebalance did before snapshots (streams.agents.rebuild
                  without a snapshot). On the way, with the clock stopped, the state is snapshotted
                  with `Snapshots.save` at offsets N - (E - 1) and N - E/2, as the worker does:
                  `save` forks a child that pickles the copy-on-write state and writes the file
                  (fsync, rename); the time `save` blocks the parent (the fork), the time until
                  `Snapshots.wait` returns (the child's write), the file size, this process's RSS
                  before `save` and after `wait`, and the child's peak private memory (sampled from
                  /proc/<child>/smaps_rollup while it writes: the pages it copied on write and its
                  own, pickle's memo among them, i.e. what a snapshot adds to the machine's memory
                  while it is written) are recorded;
  load + worst    `Snapshots.load` of the snapshot at N - (E - 1), then replay of the E - 1 ops after
                  it: the longest tail a worker snapshotting every E ops leaves (YIBAO_SNAPSHOT_EVERY,
                  default 10,000; the worker snapshots at the end of a batch, so up to one batch more,
                  and one writer at a time: when a write takes longer than E ops take to arrive, the
                  tail is what arrived meanwhile);
  load + typical  the same from the snapshot at N - E/2 (on average, a restart falls half-way).

After each restored run the state is compared with the one replayed from 0 (the size of every ledger
table, every account balance, every writer position): a mismatch is printed in red.

Not measured: reading the log from the broker (rebuild reads the whole log, or the record before the
snapshot and the tail after it); the log's size in MB is printed so that cost can be judged. A
snapshot at an offset below E is not one the service writes (its first is at E): rows where that
happens are marked, and show that a restart in a partition's first E ops gains nothing.

A replay from 0 longer than --once-above seconds (default 120) runs in the first round only: one run
that long averages minutes of noise itself, and the ratios it enters are large. On the 2-core bench
machine the whole default run takes about 16 minutes, 12 of them for the 1,000,000 size (building its
log: about 4), and memory: 3.5 GB for the 1M log and its state in this process, as much again in the
snapshot writer while it runs, and several GB in the child that builds the log. Nothing here asserts
a timing.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.engine import pin  # noqa: E402
from bench.workload import mixed, outpatient, population  # noqa: E402
from processors.policy import POLICY_ROOT  # noqa: E402
from streams import topics  # noqa: E402
from streams.partitions import PartitionLedgers  # noqa: E402
from streams.routing import Source, route  # noqa: E402
from streams.snapshots import Snapshots, value_hash  # noqa: E402
from tests.support import BOOK  # noqa: E402

TOPIC = topics.LEDGER_OPS
LEN = struct.Struct(">I")
MB = 1e6
MIB = 1 << 20


def say(console: Console, text: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")


# -- memory ---------------------------------------------------------------------------------------

def rss_mib(pid: int | str = "self") -> float:
    """VmRSS of a process in MiB, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class PrivateSampler(threading.Thread):
    """Polls a child's /proc/<pid>/smaps_rollup until it exits: the peak of its private pages (clean +
    dirty), i.e. the memory it does not share with its parent (copy-on-write copies and its own)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        path = Path(f"/proc/{self.pid}/smaps_rollup")
        while not self.stopped.is_set():
            try:
                text = path.read_text()
            except OSError:  # gone (or not ours to read)
                return
            private = sum(int(line.split()[1]) for line in text.splitlines()
                          if line.startswith(("Private_Clean:", "Private_Dirty:")))
            self.peak_kib = max(self.peak_kib, private)
            self.stopped.wait(self.interval)

    def stop(self) -> float:
        self.stopped.set()
        self.join()
        return self.peak_kib / 1024


# -- the log --------------------------------------------------------------------------------------

def build_log(console: Console, path: Path, n: int, seed: int, people: int, kind: str) -> None:
    """Write a ledger.ops log of exactly n ops to `path` (length-prefixed values), in a forked child."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _build(console, path, n, seed, people, kind)
        except BaseException:  # noqa: BLE001 - reported to the parent by the exit code
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"building the {n:,}-op log failed (exit status {status})")


def _build(console: Console, path: Path, n: int, seed: int, people: int, kind: str) -> None:
    t = time.perf_counter()
    pop = population(seed, people)
    if n <= len(pop.setup):
        raise SystemExit(f"--sizes: {n} ops is not more than the population's {len(pop.setup)} reference events")
    make = mixed if kind == "mixed" else outpatient
    work = make(seed, pop, n - len(pop.setup))
    say(console, f"  {n:,} ops: {len(pop.setup):,} reference events + {len(work.lines):,} {kind} settlements "
                 f"(sha256 {work.fingerprint()}) generated in {time.perf_counter() - t:.0f}s; routing")
    lines = pop.setup + work.lines
    del work, pop
    written, step = 0, max(1, len(lines) // 5)
    with path.open("wb", buffering=1 << 20) as f:
        for offset, line in enumerate(lines):
            for r in route(line, None, {}, Source(topics.REQUESTS, 0, offset, 1_730_000_000_000), 1, 1 << 20):
                if r.topic == TOPIC and written < n:
                    f.write(LEN.pack(len(r.value)))
                    f.write(r.value)
                    written += 1
            if offset % step == step - 1:
                say(console, f"  routed {offset + 1:,} of {len(lines):,}")
    if written < n:
        raise SystemExit(f"only {written:,} of {n:,} events reached ledger.ops (rejects in the workload?)")
    say(console, f"  log of {n:,} ops built in {time.perf_counter() - t:.0f}s")


def read_log(path: Path) -> list[bytes]:
    out = []
    with path.open("rb", buffering=1 << 20) as f:
        read = f.read
        while head := read(4):
            out.append(read(LEN.unpack(head)[0]))
    return out


# -- measurements ---------------------------------------------------------------------------------

@dataclass
class SnapCost:
    offset: int
    pause_s: float  # parent blocked in save() (the fork)
    write_s: float  # save() called -> wait() returned (the child's pickling and writing)
    size_mb: float
    rss_before: float  # MiB, this process, before save()
    rss_after: float  # MiB, after wait()
    child_private: float  # MiB, the child's peak private memory


@dataclass
class Size:
    n: int
    log_mb: float
    rss_log: float  # MiB with the log in memory, before any state
    worst_at: int
    typical_at: int
    replay: list[float] = field(default_factory=list)
    rss_state: list[float] = field(default_factory=list)  # MiB at the end of a replay from 0
    snaps: list[SnapCost] = field(default_factory=list)
    load: dict[str, list[float]] = field(default_factory=lambda: {"worst": [], "typical": []})
    total: dict[str, list[float]] = field(default_factory=lambda: {"worst": [], "typical": []})
    mismatches: list[str] = field(default_factory=list)


def summary(ledgers: PartitionLedgers) -> tuple:
    """What a restored state must agree on with the replayed one: the size of every ledger table, every
    account balance, every writer position, and the partition's own bookkeeping."""
    ps = ledgers.states[0]
    ledger = ps.ledger
    sizes = {k: len(v) for k, v in vars(ledger).items() if k != "book" and hasattr(v, "__len__")}
    return (sizes, dict(ledger.balances), dict(ps.seen), len(ps.away), len(ps.guests), len(ps.incoming),
            len(ps.parked), len(ps.leaving), ledgers.next_offset[0])


def snapshot(snaps: Snapshots, ledgers: PartitionLedgers, offset: int) -> SnapCost:
    state = ledgers.states[0]
    assert ledgers.next_offset[0] == offset
    item = (0, offset, value_hash(ledgers.last_value[0]), state)
    rss_before = rss_mib()
    t0 = time.perf_counter()
    started = snaps.save(TOPIC, [item])
    t1 = time.perf_counter()
    if not started:
        raise RuntimeError("Snapshots.save started nothing (a previous writer still running?)")
    sampler = PrivateSampler(snaps._child)  # the writer's pid (Snapshots keeps it to reap it)
    sampler.start()
    snaps.wait()
    t2 = time.perf_counter()
    child_private = sampler.stop()
    written = [p for o, p in snaps.candidates(TOPIC, 0, offset) if o == offset]
    if not written:
        raise RuntimeError(f"the snapshot writer left no file at offset {offset} (exit status logged above)")
    path = written[0]
    return SnapCost(offset, t1 - t0, t2 - t0, path.stat().st_size / MB, rss_before, rss_mib(), child_private)


def replay_from_0(console: Console, log: list[bytes], snaps: Snapshots, size: Size, progress: bool) -> tuple:
    """Seconds to replay the whole log (the clock stopped while the snapshots are written)."""
    ledgers = PartitionLedgers(BOOK, 1)
    gc.collect()
    elapsed = 0.0
    start = 0
    ledgers.reset(0)
    apply = ledgers.apply
    step = len(log) // 10 if progress else len(log) + 1
    for stop in (size.worst_at, size.typical_at, len(log)):
        t = time.perf_counter()
        for offset in range(start, stop):
            apply(0, offset, log[offset], emit=False)
            if offset % step == step - 1:
                say(console, f"    replayed {offset + 1:,} of {len(log):,} "
                             f"({(offset + 1) / (elapsed + time.perf_counter() - t):,.0f} ops/s)")
        elapsed += time.perf_counter() - t
        start = stop
        if stop < len(log):
            size.snaps.append(snapshot(snaps, ledgers, stop))
    size.rss_state.append(rss_mib())
    return elapsed, summary(ledgers)


def restore(log: list[bytes], snaps: Snapshots, at: int) -> tuple[float, float, tuple]:
    """(load seconds, load + tail seconds, summary) from the snapshot at `at`."""
    [path] = [p for o, p in snaps.candidates(TOPIC, 0, at) if o == at]
    last = log[at - 1]
    ledgers = PartitionLedgers(BOOK, 1)
    gc.collect()
    t0 = time.perf_counter()
    state = snaps.load(path, TOPIC, 0, value_hash(last))
    if state is None:
        raise RuntimeError(f"the snapshot at {at} was refused (see the warning above)")
    ledgers.reset(0, state, at, last)
    t1 = time.perf_counter()
    apply = ledgers.apply
    for offset in range(at, len(log)):
        apply(0, offset, log[offset], emit=False)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, summary(ledgers)


def measure(console: Console, args, n: int, workdir: Path) -> Size:
    path = workdir / f"ledger-ops-{n}.bin"
    say(console, f"[bold]{n:,} ops[/bold]: building the log")
    build_log(console, path, n, args.seed, args.people, args.workload)
    log = read_log(path)
    path.unlink()
    gc.collect()
    every = args.every
    size = Size(n, sum(map(len, log)) / MB, rss_mib(), max(1, n - (every - 1)), max(1, n - every // 2))
    snaps = Snapshots(workdir / f"snapshots-{n}", every, POLICY_ROOT, BOOK)
    say(console, f"  log in memory: {size.log_mb:,.0f} MB of ledger_op records, process RSS {size.rss_log:,.0f} MiB")

    reference = None
    names = ["replay", "worst", "typical"]
    long_replay = False
    for r in range(args.rounds):
        order = names[r % 3:] + names[:r % 3]  # round 0 starts with the replay, which writes the snapshots
        for name in order:
            if name == "replay":
                if long_replay:
                    continue
                say(console, f"  round {r + 1}: replay from 0 (snapshots at {size.worst_at:,} and {size.typical_at:,})")
                seconds, got = replay_from_0(console, log, snaps, size, progress=n >= 100_000)
                size.replay.append(seconds)
                long_replay = seconds > args.once_above
                say(console, f"    {seconds:.2f}s, {n / seconds:,.0f} ops/s; snapshots "
                             + ", ".join(f"{c.size_mb:,.0f} MB (fork {c.pause_s * 1000:.0f} ms, write {c.write_s:.1f}s)"
                                         for c in size.snaps[-2:]))
            else:
                at = size.worst_at if name == "worst" else size.typical_at
                load_s, total_s, got = restore(log, snaps, at)
                size.load[name].append(load_s)
                size.total[name].append(total_s)
                say(console, f"  round {r + 1}: load + {name} tail ({n - at:,} ops): load {load_s:.2f}s, "
                             f"total {total_s:.2f}s")
            if reference is None:
                reference = got
            elif got != reference:
                size.mismatches.append(f"round {r + 1} {name}")
                console.print(f"[red]  the state after '{name}' differs from the one replayed from 0[/red]")
            del got
            gc.collect()
    del log
    gc.collect()
    if not args.keep:
        shutil.rmtree(snaps.root, ignore_errors=True)
    return size


# -- report ---------------------------------------------------------------------------------------

def spread(ts: list[float]) -> str:
    return f"{(max(ts) - min(ts)) / min(ts):.0%}" if len(ts) > 1 else "—"


def med(ts: list[float]) -> float:
    return statistics.median(ts) if ts else float("nan")


def report(console: Console, args, sizes: list[Size]) -> None:
    every = args.every
    main = Table(title=f"restart of one ledger.ops partition · snapshot every {every:,} ops · best runs · "
                       f"{args.workload} workload, seed {args.seed}", title_justify="left")
    for col in ("log length", "replay from 0 (s)", "snapshot load (s)", "load + worst tail (s)", "ratio",
                "snapshot MB", "fork pause (ms)", "child write (s)"):
        main.add_column(col, justify="right")
    for s in sizes:
        mark = " *" if s.worst_at < every else ""
        rep, worst = min(s.replay), min(s.total["worst"])
        main.add_row(f"{s.n:,}{mark}", f"{rep:,.2f}", f"{min(s.load['worst']):,.2f}", f"{worst:,.2f}",
                     f"{rep / worst:,.1f}×", f"{next(c.size_mb for c in s.snaps if c.offset == s.worst_at):,.1f}",
                     f"{min(c.pause_s for c in s.snaps) * 1000:,.1f}", f"{min(c.write_s for c in s.snaps):,.2f}")
    console.print(main)
    console.print(f"[dim]worst tail = {every - 1:,} ops after the snapshot (N - {every - 1:,}); ratio = replay from 0 "
                  f"÷ (load + worst tail). Fork pause: the time Snapshots.save blocks the worker; child write: "
                  f"save → wait, the child pickling and writing the file (fsync, rename) while the worker goes on."
                  + (f" * the snapshots of this row sit below offset {every:,}, where the service has written none "
                     "yet: a restart there replays from 0." if any(s.worst_at < every for s in sizes) else "")
                  + "[/dim]")

    times = Table(title=f"times · {args.rounds} alternating rounds (a replay from 0 over {args.once_above:.0f}s runs "
                        "once) · best / median, spread = (max - min) ÷ min", title_justify="left")
    for col in ("log length", "log MB", "replay from 0", "runs", "spread", "ops/s", "snapshot load", "load + worst",
                "spread", "load + typical", "spread", "ratio typical"):
        times.add_column(col, justify="right")
    for s in sizes:
        rep, typ = min(s.replay), min(s.total["typical"])
        times.add_row(f"{s.n:,}", f"{s.log_mb:,.0f}", f"{rep:,.2f} / {med(s.replay):,.2f}s", f"{len(s.replay)}",
                      spread(s.replay), f"{s.n / rep:,.0f}",
                      f"{min(s.load['worst']):,.2f} / {med(s.load['worst']):,.2f}s",
                      f"{min(s.total['worst']):,.2f} / {med(s.total['worst']):,.2f}s", spread(s.total["worst"]),
                      f"{typ:,.2f} / {med(s.total['typical']):,.2f}s", spread(s.total["typical"]), f"{rep / typ:,.1f}×")
    console.print(times)
    console.print(f"[dim]worst tail {every - 1:,} ops, typical {every // 2:,}; ratio typical = replay from 0 ÷ "
                  "(load + typical tail). The log of ledger_op records (log MB) is what rebuild reads from the "
                  "broker before snapshots; after, the record before the snapshot and the tail.[/dim]")

    cost = Table(title="snapshot cost · every snapshot written by the replays from 0 (two per run)",
                 title_justify="left")
    for col in ("log length", "snapshots", "file MB", "fork pause ms (min / med / max)", "child write s (min / med)",
                "RSS: log → + state", "RSS at save → after wait", "child private peak"):
        cost.add_column(col, justify="right")
    for s in sizes:
        pauses, writes = [c.pause_s * 1000 for c in s.snaps], [c.write_s for c in s.snaps]
        cost.add_row(f"{s.n:,}", f"{len(s.snaps)}", " / ".join(f"{x:,.1f}" for x in sorted({round(c.size_mb, 1) for c in s.snaps})),
                     f"{min(pauses):,.1f} / {med(pauses):,.1f} / {max(pauses):,.1f}",
                     f"{min(writes):,.2f} / {med(writes):,.2f}",
                     f"{s.rss_log:,.0f} → {min(s.rss_state):,.0f} MiB",
                     f"{min(c.rss_before for c in s.snaps):,.0f} → {min(c.rss_after for c in s.snaps):,.0f} MiB",
                     f"{max(c.child_private for c in s.snaps):,.0f} MiB")
    console.print(cost)
    console.print("[dim]RSS: this process (the log stays in memory throughout; lowest of the runs). Child private "
                  "peak: the writer's pages not shared with the worker (copied on write: pickling touches every "
                  "object's reference count; and its own: pickle's memo), sampled every 0.1 s: what a snapshot adds to the "
                  "machine's memory while it is written. Here the worker waits; a live worker that goes on "
                  "writing also copies the pages it changes meanwhile.[/dim]")
    bad = [f"{s.n:,}: {', '.join(s.mismatches)}" for s in sizes if s.mismatches]
    if bad:
        console.print("[red]restored states that differ from the replayed ones: " + "; ".join(bad) + "[/red]")
    else:
        console.print("every restored state agreed with the one replayed from 0 (table sizes, balances, writer positions)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                    help="log lengths in ops (default 10000 100000 1000000)")
    ap.add_argument("--every", type=int, default=int(os.environ.get("YIBAO_SNAPSHOT_EVERY") or 10_000),
                    help="ops between snapshots, as YIBAO_SNAPSHOT_EVERY (default: that, else 10000)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best counts (default 3)")
    ap.add_argument("--once-above", type=float, default=120.0,
                    help="a replay from 0 longer than this many seconds runs in the first round only (default 120)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--people", type=int, default=3000, help="population size (default 3000)")
    ap.add_argument("--workload", choices=("mixed", "outpatient"), default="mixed",
                    help="settlements after the population (default mixed: every benefit, cancels, resends)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the logs and snapshots are written (default: a new temporary directory; "
                         "on disk, not tmpfs, for a real fsync)")
    ap.add_argument("--keep", action="store_true", help="keep the snapshots (printed path)")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed one)")
    args = ap.parse_args(argv)
    if args.every < 2:
        ap.error("--every must be at least 2")

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=150)
    pinned = pin(args.cpu)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="yibao-restart-bench-", dir=args.dir))
    console.print(f"yibao restart bench · python {platform.python_version()} · {pinned} · seed {args.seed} · "
                  f"{args.people:,} people · {args.workload} · snapshot every {args.every:,} · files in {workdir}")
    sizes = []
    t = time.perf_counter()
    try:
        for n in args.sizes:
            sizes.append(measure(console, args, n, workdir))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if sizes:
        report(console, args, sizes)
    console.print(f"(the whole run took {time.perf_counter() - t:.0f}s)")


if __name__ == "__main__":
    main()
