"""Settlement-engine benchmark: events/s of the offline path (decode -> Ledger.apply -> encode).

    python bench/engine.py [--events N] [--seed S] [--rounds R] [--people P] [--cpu C] [--profile]

Measured side by side in one process, pinned to one core, in alternating rounds (the order rotates
each round) so machine noise touches every measurement alike; the best round counts:

  floor       decode_event + encode of a canned result of the real shape, no rules: the cost the
              rules sit on top of (through `settle_lines` with a ledger that only echoes);
  outpatient  med_type 11 settlements end to end through `settle_lines` (results encoded once, as
              the service does);
  mixed       every benefit, with cancels and duplicates, end to end;
  family      family mutual aid: account purchases by users bound to 1-3 authorizers whose own
              accounts run dry (offline: the streaming service does not take bindings yet).

Diagnostics split the outpatient path into decode only, `Ledger.apply` only (pre-decoded events)
and encode only (the real results). Each timed run settles against a fresh ledger loaded with the
same population (untimed). The workload is seeded and built (and encoded to bytes) before timing.
This is a report: nothing here asserts a timing. `--profile` runs the outpatient workload under
cProfile instead and prints the top functions by cumulative and by own time.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pydantic  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.workload import Population, Workload, family, mixed, outpatient, population  # noqa: E402
from connectors.files import settle_lines  # noqa: E402
from processors.ledger import Ledger  # noqa: E402
from schemas.serde import BadEvent, decode_event, encode  # noqa: E402
from tests.support import BOOK  # noqa: E402

GOAL = 50_000  # outpatient settlements per second


class EchoLedger:
    """Stands in for Ledger in the floor: answers every event with a canned result of the real shape."""

    def __init__(self, output: dict) -> None:
        self.output = output

    def answer(self, event) -> tuple[dict, bytes]:
        result = {"infno": event.infno, "inf_refmsgid": event.msgid, "infcode": 0, "err_msg": None,
                  "warn_msg": None, "output": self.output}
        return result, encode(result)

    def places(self, setl_id: str) -> tuple[str, str]:
        return "530102", "530100"  # the canned result's clearing pair (booked once: its setl_id repeats)


def pin(cpu: int | None) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if cpu is None else cpu
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as e:
        return f"not pinned ({e})"
    return f"pinned to cpu {cpu} of {allowed}"


def loaded_ledger(setup: list) -> Ledger:
    ledger = Ledger(BOOK)
    for event in setup:
        ledger.apply(event)
    return ledger


# -- the timed runs: each returns seconds -------------------------------------------------------

def run_end_to_end(lines: list[bytes], ledger) -> float:
    out: list[str] = []
    append = out.append
    gc.collect()
    t0 = time.perf_counter()
    for item in settle_lines(lines, ledger):
        append(item.data)
    return time.perf_counter() - t0


def run_decode(lines: list[bytes]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    for line in lines:
        decode_event(line)
    return time.perf_counter() - t0


def run_apply(events: list, ledger: Ledger) -> float:
    apply = ledger.apply
    gc.collect()
    t0 = time.perf_counter()
    for event in events:
        apply(event)
    return time.perf_counter() - t0


def run_encode(results: list[dict]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    for result in results:
        encode(result)
    return time.perf_counter() - t0


# -- preparation (untimed) ----------------------------------------------------------------------

def decoded(lines: list[bytes]) -> list:
    events = [decode_event(line) for line in lines]
    bad = [e for e in events if isinstance(e, BadEvent)]
    if bad:
        raise SystemExit(f"workload has invalid lines, fix the generator: {bad[0]}")
    return events


def census(workload: Workload, setup: list) -> tuple[list[dict], Counter]:
    """Settle once, untimed: the real results (for encode-only and the canned floor) and their kinds."""
    ledger = loaded_ledger(setup)
    results, counts = [], Counter()
    for item in settle_lines(workload.lines, ledger):
        r = item.result
        results.append(r)
        if r["infcode"] != 0:
            counts["refused: " + r["err_msg"].split(":")[0]] += 1
        else:
            counts["ok"] += 1
            if r["warn_msg"]:
                counts["ok with warning"] += 1
    return results, counts


def canned_output(results: list[dict]) -> dict:
    """The output of a median-sized real outpatient result: the floor encodes this for every event."""
    ok = sorted((r for r in results if r["infcode"] == 0), key=lambda r: len(encode(r)))
    return ok[len(ok) // 2]["output"]


# -- report -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=3000, help="events per workload (default 3000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best counts (default 3)")
    ap.add_argument("--people", type=int, default=3000, help="population size (default 3000)")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed one)")
    ap.add_argument("--profile", action="store_true",
                    help="profile the outpatient workload under cProfile instead of timing")
    args = ap.parse_args(argv)

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)
    pinned = pin(args.cpu)
    t_build = time.perf_counter()
    pop: Population = population(args.seed, args.people)
    op, mx = outpatient(args.seed, pop, args.events), mixed(args.seed, pop, args.events)
    fam, bindings = family(args.seed, pop, args.events)
    setup = decoded(pop.setup)
    fam_setup = setup + decoded(bindings)
    t_build = time.perf_counter() - t_build
    console.print(f"yibao engine bench · python {platform.python_version()} · pydantic {pydantic.VERSION} · "
                  f"{pinned} · seed {args.seed}")
    console.print(f"population: {len(pop.people)} people, {sum(len(v) for v in pop.hospitals.values())} hospitals, "
                  f"{len(pop.pharmacies)} pharmacies, {pop.kinds['filing']} filings, "
                  f"{pop.kinds['accumulators']} imports ({len(setup)} setup events, applied untimed)")
    for w in (op, mx, fam):
        mix = ", ".join(f"{k} {v}" for k, v in sorted(w.kinds.items(), key=lambda kv: -kv[1]))
        console.print(f"{w.name}: {len(w.lines)} events, sha256 {w.fingerprint()} · {mix}")
    console.print(f"(workloads built and encoded in {t_build:.1f}s)")

    if args.profile:
        profile(console, op, setup)
        return

    op_results, op_counts = census(op, setup)
    _, mx_counts = census(mx, setup)
    fam_results, fam_counts = census(fam, fam_setup)
    fam_counts["drew on an authorizer"] = sum(bool(r["infcode"] == 0 and r["output"]["setlinfo"]["acct_mulaid_pay"])
                                              for r in fam_results)
    for w, counts in ((op, op_counts), (mx, mx_counts), (fam, fam_counts)):
        console.print(f"{w.name} results: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    echo = EchoLedger(canned_output(op_results))
    op_events = decoded(op.lines)

    cases = {  # name -> (events, run(): seconds)
        "floor · outpatient events": (len(op.lines), lambda: run_end_to_end(op.lines, echo)),
        "floor · mixed events": (len(mx.lines), lambda: run_end_to_end(mx.lines, echo)),
        "outpatient end to end": (len(op.lines), lambda: run_end_to_end(op.lines, loaded_ledger(setup))),
        "mixed end to end": (len(mx.lines), lambda: run_end_to_end(mx.lines, loaded_ledger(setup))),
        "family drawing end to end": (len(fam.lines), lambda: run_end_to_end(fam.lines, loaded_ledger(fam_setup))),
        "outpatient · decode_event only": (len(op.lines), lambda: run_decode(op.lines)),
        "outpatient · Ledger.apply only": (len(op.lines), lambda: run_apply(op_events, loaded_ledger(setup))),
        "outpatient · encode only": (len(op.lines), lambda: run_encode(op_results)),
    }
    names = list(cases)
    times: dict[str, list[float]] = {n: [] for n in names}
    t_bench = time.perf_counter()
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate so no case always runs first
        for name in order:
            times[name].append(cases[name][1]())
    t_bench = time.perf_counter() - t_bench

    rate = {n: cases[n][0] / min(ts) for n, ts in times.items()}
    table = Table(title=f"settlement engine · best of {args.rounds} alternating rounds · {args.events} events each",
                  title_justify="left")
    for col in ("measurement", "events/s (best)", "events/s (median)", "µs/event", "spread", "÷ floor"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    floor_of = {"outpatient end to end": "floor · outpatient events", "mixed end to end": "floor · mixed events"}
    for i, name in enumerate(names):
        if i == 5:
            table.add_section()
        ts = times[name]
        n = cases[name][0]
        ratio = f"{rate[name] / rate[floor_of[name]]:.3f}" if name in floor_of else "—"
        table.add_row(name, f"{rate[name]:,.0f}", f"{n / statistics.median(ts):,.0f}", f"{1e6 / rate[name]:,.1f}",
                      f"{(max(ts) - min(ts)) / min(ts):.0%}", ratio)
    console.print(table)

    floor_us, e2e_us = 1e6 / rate["floor · outpatient events"], 1e6 / rate["outpatient end to end"]
    console.print(f"outpatient: floor {floor_us:.1f} µs/event + rules {e2e_us - floor_us:.1f} µs/event "
                  f"({(e2e_us - floor_us) / e2e_us:.0%} of the end-to-end time)")
    got = rate["outpatient end to end"]
    met = got >= GOAL
    verdict = "[green]MET[/green]" if met else f"[red]NOT MET[/red] ({GOAL / got:.1f}× short)"
    console.print(f"goal ≥ {GOAL:,} outpatient settlements/s: {verdict} — best {got:,.0f}/s; "
                  f"the floor alone does {rate['floor · outpatient events']:,.0f}/s")
    console.print(f"family drawing: {rate['family drawing end to end']:,.0f} payments/s, "
                  f"{rate['family drawing end to end'] / got:.2f}× plain outpatient in the same run")
    console.print(f"(timed rounds took {t_bench:.1f}s)")


def profile(console: Console, workload: Workload, setup: list) -> None:
    import cProfile
    import pstats

    ledger = loaded_ledger(setup)
    prof = cProfile.Profile()
    gc.collect()
    t0 = time.perf_counter()
    prof.enable()
    for item in settle_lines(workload.lines, ledger):
        item.data  # the result's JSON, encoded once inside as the service does
    prof.disable()
    elapsed = time.perf_counter() - t0
    console.print(f"profiled {len(workload.lines)} outpatient events end to end in {elapsed:.2f}s "
                  f"({len(workload.lines) / elapsed:,.0f}/s under the profiler)")
    stats = pstats.Stats(prof, stream=sys.stdout).strip_dirs()
    for key in ("cumulative", "tottime"):
        print(f"\n=== top 25 by {key} ===")
        stats.sort_stats(key).print_stats(25)


if __name__ == "__main__":
    main()
