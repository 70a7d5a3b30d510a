"""What-if (`yibao replay --policy`): each settlement (and cancel) as recorded beside the same log
replayed under other rules, paired by `setl_id`, and what the change adds up to: totals per money
field, per fund (`setldetail`'s fund_pay_type) and per benefit, persons better or worse off, the
largest individual changes, per month for the chart; a CSV of every pair and a PNG chart.

Money stays Decimal; the chart alone draws floats (bar heights), labelled with the exact sums.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from processors.money import ZERO
from processors.settlement import FUND_NAMES
from schemas.privacy import mask_id

from . import topics
from .replay import Outcome, Replay, settlement_day
from .view import document

MONEY = ("medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "hifob_pay", "maf_pay", "acct_pay", "acct_mulaid_pay",
         "psn_cash_pay", "psn_part_amt")


@dataclass(frozen=True, slots=True)
class Pair:
    """One settlement or cancel: its setlinfo (with `setldetail` under "funds") as recorded and as
    replayed; None on the side that refused it."""

    setl_id: str
    old: dict | None
    new: dict | None

    def money(self, side: str, name: str) -> Decimal:
        info = self.old if side == "old" else self.new
        return info[name] if info else ZERO

    @property
    def any(self) -> dict:
        return self.old or self.new

    def change(self, name: str = "fund_pay_sumamt") -> Decimal:
        return self.money("new", name) - self.money("old", name)


def _settled(docs) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for doc in docs:
        output = doc.get("output") if doc and doc.get("infcode") == 0 else None
        info = output.get("setlinfo") if isinstance(output, dict) else None
        if info is not None and info["setl_id"] not in out:
            out[info["setl_id"]] = {**info, "funds": output.get("setldetail") or []}
    return out


def pairs(outcome: Outcome, replay: Replay) -> list[Pair]:
    """The recorded and the replayed settlements in the replay's scope, paired by setl_id, in setl_id
    order (a setl_id is the same under any rules: it is derived from the person and the msgid)."""
    recorded, replayed = [], []
    for r in outcome.recorded_results:
        doc = document(topics.RESULTS, r)
        if replay.recorded_in_scope(r, settlement_day(topics.RESULTS, doc)):
            recorded.append(doc)
    for out, origin in outcome.recomputed_results:
        doc = document(topics.RESULTS, out)
        if replay.in_scope(origin, settlement_day(topics.RESULTS, doc)):
            replayed.append(doc)
    old, new = _settled(recorded), _settled(replayed)
    return [Pair(s, old.get(s), new.get(s)) for s in sorted(old.keys() | new.keys())]


@dataclass(frozen=True, slots=True)
class Summary:
    totals: dict[str, tuple[Decimal, Decimal]]  # money field -> (old, new)
    funds: dict[str, tuple[Decimal, Decimal]]  # fund_pay_type -> (old, new)
    benefits: dict[str, tuple[int, Decimal, int, Decimal]]  # benefit -> (count, fund, count, fund): old, new
    months: dict[str, tuple[Decimal, Decimal]]  # yyyy-MM -> fund_pay_sumamt (old, new)
    better: int  # persons who pay less themselves (psn_part_amt) under the new rules
    worse: int
    same: int
    only_old: int  # settled as recorded, refused now
    only_new: int


def summarize(found: list[Pair]) -> Summary:
    totals = {name: (sum((p.money("old", name) for p in found), ZERO), sum((p.money("new", name) for p in found), ZERO))
              for name in MONEY}
    funds: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    benefits: dict[str, list] = defaultdict(lambda: [0, ZERO, 0, ZERO])
    months: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    burden: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for p in found:
        for i, info in enumerate((p.old, p.new)):
            if info is None:
                continue
            for row in info["funds"]:
                funds[row["fund_pay_type"]][i] += row["fund_payamt"]
            benefits[info["benefit"]][2 * i] += 1
            benefits[info["benefit"]][2 * i + 1] += info["fund_pay_sumamt"]
            months[info["setl_time"][:7]][i] += info["fund_pay_sumamt"]
            burden[info["psn_no"]][i] += info["psn_part_amt"]
    return Summary(totals, {k: tuple(v) for k, v in sorted(funds.items())},
                   {k: tuple(v) for k, v in sorted(benefits.items())}, {k: tuple(v) for k, v in sorted(months.items())},
                   sum(new < old for old, new in burden.values()), sum(new > old for old, new in burden.values()),
                   sum(new == old for old, new in burden.values()),
                   sum(p.new is None for p in found), sum(p.old is None for p in found))


def fund_name(fund_pay_type: str) -> str:
    return f"{fund_pay_type} {FUND_NAMES.get(fund_pay_type, '')}".strip()


def largest(found: list[Pair], n: int) -> list[Pair]:
    """The n pairs whose fund pay changed most (either way), then by setl_id; unchanged ones left out."""
    changed = [p for p in found if p.change() or p.change("psn_part_amt")]
    return sorted(changed, key=lambda p: (-abs(p.change()), -abs(p.change("psn_part_amt")), p.setl_id))[:n]


def write_csv(found: list[Pair], path: Path) -> None:
    """One row per settlement: the recorded and the replayed money side by side (blank where refused),
    the person masked."""
    head = ["setl_id", "setl_date", "psn_no", "med_type", "benefit_old", "benefit_new", "policy_old", "policy_new"]
    head += [f"{name}_{side}" for name in MONEY for side in ("old", "new")]
    head += ["fund_pay_sumamt_change", "psn_part_amt_change"]
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(head)
        for p in found:
            info = p.any
            row = [p.setl_id, info["setl_time"][:10], mask_id(info["psn_no"]), info["med_type"]]
            row += [side["benefit"] if side else "" for side in (p.old, p.new)]
            row += [side["policy_id"] if side else "" for side in (p.old, p.new)]
            row += [str(side[name]) if side else "" for name in MONEY for side in (p.old, p.new)]
            row += [str(p.change()), str(p.change("psn_part_amt"))]
            out.writerow(row)


def write_chart(summary: Summary, path: Path, new_label: str) -> None:
    """Fund pay (fund_pay_sumamt) per settlement month, recorded beside replayed, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = list(summary.months)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(months) + 2), 4.5))
    x = range(len(months))
    for i, (label, shift) in enumerate((("recorded", -0.2), (new_label, 0.2))):
        sums = [summary.months[m][i] for m in months]
        bars = ax.bar([k + shift for k in x], [float(s) for s in sums], width=0.4, label=label)
        ax.bar_label(bars, labels=[f"{s:,}" for s in sums], fontsize=7, padding=2)
    ax.set_xticks(list(x), months)
    ax.set_ylabel("fund pay, yuan (fund_pay_sumamt)")
    ax.set_title("Fund pay per settlement month: recorded vs what-if")
    ax.legend()
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
