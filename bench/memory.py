"""Memory benchmark: what a ledger holds per settlement, with and without the answer window.

    python bench/memory.py [--events N] [--people P] [--seed S] [--windows D ...]

One seeded outpatient workload (`bench/workload.py`: N settlements over P people, spread over
2024-03-01..2024-12-31) is written to a temporary JSON-lines file; then, for each answer window D
(days of event time; 0 keeps every answer: the ledger before the window existed), a fresh process
settles the file through `settle_lines` (the offline path the streaming ledger shares) and reports its
resident memory (VmRSS, after a full collection) before and after, and what it holds: answers with
their result, answers expired to a fingerprint, settlements. Each window runs in its own process, so
one's memory never shows in another's; the ratio column compares each with keeping everything.
This is a report: nothing here asserts a size.
"""
from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(path: Path, window: int) -> dict:
    from connectors.files import settle_lines
    from processors.ledger import Ledger
    from processors.policy import load_policies

    ledger = Ledger(load_policies(), window)
    gc.collect()
    before = rss_kib()
    started = time.perf_counter()
    settled = 0
    with path.open("rb") as f:
        for item in settle_lines(f, ledger):
            settled += item.result.get("infcode") == 0
    seconds = time.perf_counter() - started
    gc.collect()
    held = sum(a[2] is not None for a in ledger.answered.values())
    return {"window": window, "settled": settled, "seconds": seconds, "before_kib": before, "after_kib": rss_kib(),
            "held": held, "expired": len(ledger.answered) - held, "settlements": len(ledger.settlements)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="settlements (default 1000000)")
    ap.add_argument("--people", type=int, default=3000, help="population size (default 3000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--windows", type=int, nargs="+", default=[0, 400, 30],
                    help="answer windows in days, 0 = keep every answer (default 0 400 30)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.windows[0])))
        return

    from bench.workload import outpatient, population

    screen = Console(width=max(Console().width, 150))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        with screen.status(f"building {args.events} settlements over {args.people} people ..."):
            pop = population(args.seed, args.people)
            work = outpatient(args.seed, pop, args.events)
            path.write_bytes(b"\n".join(pop.setup + work.lines) + b"\n")
            del work
        rows = []
        for window in args.windows:
            with screen.status(f"settling with an answer window of {window or 'every'} days ..."):
                out = subprocess.run([sys.executable, __file__, "--child", str(path), "--windows", str(window)],
                                     check=True, capture_output=True, text=True, cwd=ROOT)
            rows.append(json.loads(out.stdout))
    table = Table(title=f"ledger memory after {args.events:,} outpatient settlements ({args.people:,} people)")
    for col in ("answer window", "settled", "RSS after (MiB)", "growth per settlement (B)", "vs keep-all",
                "answers with result", "expired to fingerprint", "settlements/s"):
        table.add_column(col, justify="right")
    base = None
    for r in rows:
        growth = (r["after_kib"] - r["before_kib"]) * 1024 / max(1, r["settled"])
        base = base or growth
        table.add_row(f"{r['window']} days" if r["window"] else "keep all", f"{r['settled']:,}",
                      f"{r['after_kib'] / 1024:,.0f}", f"{growth:,.0f}", f"{growth / base:.2f}",
                      f"{r['held']:,}", f"{r['expired']:,}", f"{r['settled'] / r['seconds']:,.0f}")
    screen.print(table)


if __name__ == "__main__":
    main()
