"""Period clearing (清算): settlements and cancels summed per month (`setlym`), per clearing pair (the
treatment prefecture → the insured prefecture) and per institution, as the agency clears them with
institutions and with other regions.

An entry is one settlement or cancel, taken once by `setl_id`. A cancel carries its original's
`setl_time` (the request has no time of its own), so it counts, negated, in its original's month.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .money import ZERO

SUMS = ("medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "hifob_pay", "maf_pay", "acct_pay", "acct_mulaid_pay",
        "psn_cash_pay")


@dataclass(frozen=True, slots=True)
class Entry:
    setl_id: str
    cancels: str | None  # the setl_id a cancel reverses
    setlym: str  # yyyy-MM
    mdtrtarea: str  # the treatment prefecture (a province code where the place is filed as a whole)
    insuplc: str  # the insured prefecture
    fixmedins_code: str
    amounts: tuple[Decimal, ...]  # in SUMS order


def prefecture_code(admdvs: str) -> str:
    return admdvs[:4] + "00"


def entry(info: dict, treated: str, insured: str) -> Entry:
    """The clearing entry of a result's `setlinfo`, treated in `treated`, insured in `insured`."""
    return Entry(info["setl_id"], info.get("init_setl_id"), info["setl_time"][:7], prefecture_code(treated),
                 prefecture_code(insured), info["fixmedins_code"], tuple(info[k] for k in SUMS))


def statement(entries: Iterable[Entry], period: str) -> list[dict]:
    """One row per (treatment prefecture, insured prefecture, institution) with entries in `period`
    (yyyy-MM), sorted: counts of settlements and cancels and the sums, cancels negative."""
    seen: set[str] = set()
    rows: dict[tuple[str, str, str], dict] = {}
    for e in entries:
        if e.setlym != period or e.setl_id in seen:
            continue
        seen.add(e.setl_id)
        row = rows.setdefault((e.mdtrtarea, e.insuplc, e.fixmedins_code), {
            "setlym": period, "mdtrtarea_admvs": e.mdtrtarea, "insuplc_admdvs": e.insuplc,
            "fixmedins_code": e.fixmedins_code, "settlements": 0, "cancels": 0, **{k: ZERO for k in SUMS}})
        row["cancels" if e.cancels else "settlements"] += 1
        for k, amount in zip(SUMS, e.amounts):
            row[k] += amount
    return [rows[k] for k in sorted(rows)]
