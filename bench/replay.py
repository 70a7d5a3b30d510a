"""Audit-replay benchmark: events/s of `yibao replay` from an archive, beside the engine's own figure.

    python bench/replay.py [--events N] [--people P] [--seed S] [--rounds R] [--cpu C]

The seeded mixed workload (bench/workload.py, after its population's reference data) is streamed
offline through the real router, ledger and clearing code and archived (tests/archived.py, untimed).
Then, in alternating rounds in one process pinned to one core, the best round counting:

  replay      read_archive (Avro segments) + Replay.run (route, ledger, clearing, compare): the
              whole `yibao replay` minus printing and `verify`
  engine      Ledger.apply alone over the same events, pre-decoded: the settlement engine's figure

and the replay's time split by stage (one extra run). The product's aim is 50,000 events/s from the
archive. This is a report: nothing here asserts a timing.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.engine import decoded, pin, run_apply  # noqa: E402
from bench.workload import mixed, population  # noqa: E402
from connectors.archive import read_manifest  # noqa: E402
from processors.ledger import Ledger  # noqa: E402
from streams import topics  # noqa: E402
from streams.replay import Replay, read_archive  # noqa: E402
from tests.archived import archive  # noqa: E402
from tests.support import BOOK  # noqa: E402

GOAL = 50_000  # events/s from the archive
PARTITIONS = 4


def run_replay(root: Path) -> float:
    t0 = time.perf_counter()
    log, _ = read_archive(root)
    outcome = Replay(log, BOOK, PARTITIONS, 1_000_000).run()
    elapsed = time.perf_counter() - t0
    if not outcome.identical:
        raise SystemExit(f"the bench archive does not replay identically: {outcome.differences[0]}")
    return elapsed


def stages(root: Path) -> dict[str, float]:
    """The replay's time by stage (Replay.run's steps, called one by one)."""
    spent = {}
    t0 = time.perf_counter()
    log, _ = read_archive(root)
    spent["read the archive (Avro)"] = time.perf_counter() - t0
    r = Replay(log, BOOK, PARTITIONS, 1_000_000)
    for name, step in (("route the inputs", r._route), ("ledger (PartitionLedgers)", r._ledger),
                       ("clearing (PartitionClearing)", r._clearing)):
        t0 = time.perf_counter()
        step()
        spent[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for topic in (topics.LEDGER_OPS, topics.CLEARING):
        r._unmatched_twins(topic)
    for topic in (topics.RESULTS, topics.REJECTED, topics.STATEMENTS):
        r._outputs(topic)
    spent["compare the outputs"] = time.perf_counter() - t0
    return spent


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=5000, help="mixed settlement events (default 5000)")
    ap.add_argument("--people", type=int, default=2000, help="population size (default 2000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best counts (default 3)")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed one)")
    args = ap.parse_args(argv)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    pinned = pin(args.cpu)
    pop = population(args.seed, args.people)
    lines = pop.setup + mixed(args.seed, pop, args.events).lines
    events = decoded(lines)
    with tempfile.TemporaryDirectory(prefix="yibao-bench-replay-") as tmp:
        t0 = time.perf_counter()
        root = archive(lines, Path(tmp) / "archive", partitions=PARTITIONS)
        built = time.perf_counter() - t0
        records = sum(e["records"] for e in read_manifest(root))
        size = sum(p.stat().st_size for p in root.rglob("*.avro"))
        console.print(f"yibao replay bench · {pinned} · seed {args.seed} · {len(lines)} input events "
                      f"({len(pop.setup)} reference, {args.events} mixed) · archive {records} records, "
                      f"{size / 2**20:.1f} MiB (streamed offline and archived in {built:.1f}s)")
        times: dict[str, list[float]] = {"replay from the archive": [], "engine · Ledger.apply only": []}
        for i in range(args.rounds):
            order = list(times) if i % 2 == 0 else list(reversed(times))
            for name in order:
                times[name].append(run_replay(root) if name.startswith("replay") else
                                   run_apply(events, Ledger(BOOK)))
        split = stages(root)
    rate = {name: len(lines) / min(ts) for name, ts in times.items()}
    table = Table(title=f"best of {args.rounds} alternating rounds · {len(lines)} events", title_justify="left")
    for col in ("measurement", "events/s", "µs/event"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    for name, r in rate.items():
        table.add_row(name, f"{r:,.0f}", f"{1e6 / r:,.1f}")
    console.print(table)
    replay, engine = rate["replay from the archive"], rate["engine · Ledger.apply only"]
    console.print(f"replay ÷ engine: {replay / engine:.2f} (the replay runs the engine on every event, and routes, "
                  "encodes and compares around it)")
    total = sum(split.values())
    console.print("replay time by stage: " + ", ".join(f"{k} {v / total:.0%}" for k, v in split.items()))
    verdict = "[green]MET[/green]" if replay >= GOAL else f"[red]NOT MET[/red] ({GOAL / replay:.1f}× short)"
    console.print(f"goal ≥ {GOAL:,} events/s from the archive: {verdict} — bounded by the engine it re-runs "
                  f"({engine:,.0f}/s for Ledger.apply alone, one core)")


if __name__ == "__main__":
    main()
