"""Period clearing (清算): settlements and cancels summed per month (`setlym`), per clearing pair (the
treatment prefecture → the insured prefecture) and per institution, as the agency clears them with
institutions and with other regions; statements at a period's close; reconciliation (3201) of an
institution's totals.

An entry is one settlement or cancel, taken once by `setl_id`. A cancel carries its original's
`setl_time` (the request has no time of its own), so it counts, negated, in its original's month.
`Clearing` is the state the streaming clearing agent keeps per partition: a pure function of the
entries and commands in log order, so replaying the log rebuilds it exactly. An entry whose month is
already closed when it arrives counts in the next open month, flagged late with its own month.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from schemas.models import ClearingCloseEvent, ReconcileEvent

from .ledger import ok
from .money import FEN, ZERO

SUMS = ("medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "hifob_pay", "maf_pay", "acct_pay", "acct_mulaid_pay",
        "psn_cash_pay")
# 3201's totals (NHSA.md): compared field by field, with the net count of settlements
RECONCILED = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")
_RECONCILED_AT = tuple(SUMS.index(k) for k in RECONCILED)


@dataclass(frozen=True, slots=True)
class Entry:
    setl_id: str
    cancels: str | None  # the setl_id a cancel reverses
    setlym: str  # yyyy-MM: the month it counts in
    mdtrtarea: str  # the treatment prefecture (a province code where the place is filed as a whole)
    insuplc: str  # the insured prefecture
    fixmedins_code: str
    amounts: tuple[Decimal, ...]  # in SUMS order
    day: str = ""  # yyyy-MM-dd of the settlement (a cancel: of its original)
    insutype: str = "310"  # 510: the maternity fund paid hifp_pay


def prefecture_code(admdvs: str) -> str:
    return admdvs[:4] + "00"


def entry(info: dict, treated: str, insured: str) -> Entry:
    """The clearing entry of a result's `setlinfo` (or a `clearing_entry` record), treated in
    `treated`, insured in `insured`."""
    return Entry(info["setl_id"], info.get("init_setl_id"), info["setl_time"][:7], prefecture_code(treated),
                 prefecture_code(insured), info["fixmedins_code"], tuple(info[k] for k in SUMS),
                 info["setl_time"][:10], info.get("insutype") or "310")


def _blank(period: str, e: Entry) -> dict:
    return {"setlym": period, "mdtrtarea_admvs": e.mdtrtarea, "insuplc_admdvs": e.insuplc,
            "fixmedins_code": e.fixmedins_code, "settlements": 0, "cancels": 0, **{k: ZERO for k in SUMS}}


def _count(row: dict, e: Entry) -> None:
    row["cancels" if e.cancels else "settlements"] += 1
    for k, amount in zip(SUMS, e.amounts):
        if amount:
            row[k] += amount


def _fund_type(e: Entry) -> tuple[tuple[str, Decimal], ...]:
    """An entry's fund shares by national fund type: 310100 basic pooling (510100 when the maternity
    fund paid), 330100 large-amount subsidy, 610100 medical assistance."""
    return (("510100" if e.insutype == "510" else "310100", e.amounts[2]), ("330100", e.amounts[3]),
            ("610100", e.amounts[4]))


def next_month(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


@dataclass(slots=True)
class _Day:
    """An institution's entries of one settlement day, as reconciliation needs them."""

    count: int = 0  # settlements net of cancels
    sums: tuple[Decimal, ...] = (ZERO,) * len(RECONCILED)
    setl_ids: list[str] = field(default_factory=list)


class Clearing:
    """One partition's clearing: entries taken once by setl_id, months closed once, a statement per
    institution at a close. Holds sums, not entries: per entry only its setl_id is kept."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.closed: set[str] = set()
        self._rows: dict[str, dict[tuple[str, str, str], dict]] = {}  # month -> (treated, insured, institution) -> row
        self._late: dict[str, list[tuple[str, str, str]]] = {}  # month -> (institution, setl_id, its own month)
        self._funds: dict[tuple[str, str], dict[str, Decimal]] = {}  # (month, institution) -> fund type -> sum
        self._days: dict[str, dict[str, _Day]] = {}  # institution -> yyyy-MM-dd -> what reconciliation needs

    def add(self, e: Entry) -> bool:
        """Book an entry; False when this setl_id is already booked (a producer's retry)."""
        if e.setl_id in self.seen:
            return False
        self.seen.add(e.setl_id)
        period = e.setlym
        while period in self.closed:
            period = next_month(period)
        if period != e.setlym:
            self._late.setdefault(period, []).append((e.fixmedins_code, e.setl_id, e.setlym))
        rows = self._rows.setdefault(period, {})
        key = (e.mdtrtarea, e.insuplc, e.fixmedins_code)
        row = rows.get(key)
        if row is None:
            row = rows[key] = _blank(period, e)
        _count(row, e)
        funds = self._funds.get((period, e.fixmedins_code))
        if funds is None:
            funds = self._funds[period, e.fixmedins_code] = {}
        for kind, amount in _fund_type(e):
            if amount:
                funds[kind] = funds.get(kind, ZERO) + amount
        days = self._days.get(e.fixmedins_code)
        if days is None:
            days = self._days[e.fixmedins_code] = {}
        day = days.get(e.day)
        if day is None:
            day = days[e.day] = _Day()
        day.count += -1 if e.cancels else 1
        day.sums = tuple(a + e.amounts[i] for a, i in zip(day.sums, _RECONCILED_AT))
        day.setl_ids.append(e.setl_id)
        return True

    def rows(self, period: str) -> list[dict]:
        """The month's rows, sorted by (treatment place, insured place, institution)."""
        rows = self._rows.get(period, {})
        return [rows[k] for k in sorted(rows)]

    def close(self, period: str) -> list[dict] | None:
        """Close a month: its statements, one per institution with entries in it (sorted by
        institution); None when the month was closed already (closing again changes nothing)."""
        if period in self.closed:
            return None
        self.closed.add(period)
        mine: dict[str, list[dict]] = {}
        for row in self.rows(period):
            mine.setdefault(row["fixmedins_code"], []).append(row)
        return [self._statement(period, code, mine[code]) for code in sorted(mine)]

    def reconcile(self, fixmedins_code: str, begin: dt.date, end: dt.date, theirs: dict,
                  their_ids: list[str] | None) -> dict:
        """3201-style: the institution's totals for settlements dated begin..end (inclusive) against
        the entries booked here; what differs, by how much, and (given their setl_ids) which
        settlements are missing on either side."""
        first, last = begin.isoformat(), end.isoformat()
        days = [d for day, d in sorted(self._days.get(fixmedins_code, {}).items()) if first <= day <= last]
        mine: dict = {k: sum((d.sums[i] for d in days), ZERO) for i, k in enumerate(RECONCILED)}
        mine["fixmedins_setl_cnt"] = sum(d.count for d in days)
        theirs = {k: v.quantize(FEN) if isinstance(v, Decimal) else v for k, v in theirs.items()}
        diffs = [{"field": k, "yibao": str(mine[k]), "institution": str(theirs[k]), "difference": str(theirs[k] - mine[k])}
                 for k in (*RECONCILED, "fixmedins_setl_cnt") if theirs[k] != mine[k]]
        out = {"stmt_begndate": first, "stmt_enddate": last, "stmt_rslt": "0", **mine, "differences": diffs}
        if their_ids is not None:
            here = [s for d in days for s in d.setl_ids]
            there = set(their_ids)
            out["missing_in_yibao"] = sorted(there.difference(here))
            out["missing_at_institution"] = [s for s in here if s not in there]
        if diffs or out.get("missing_in_yibao") or out.get("missing_at_institution"):
            out["stmt_rslt"] = "1"
        out["stmt_rslt_dscr"] = _describe(out)
        return out

    def _statement(self, period: str, fixmedins_code: str, rows: list[dict]) -> dict:
        funds = self._funds.get((period, fixmedins_code), {})
        return {"statement_id": f"ST-{period}-{fixmedins_code}", "setlym": period, "fixmedins_code": fixmedins_code,
                "settlements": sum(r["settlements"] for r in rows), "cancels": sum(r["cancels"] for r in rows),
                **{k: sum((r[k] for r in rows), ZERO) for k in SUMS},
                "fund_pay": [{"fund_pay_type": k, "fund_payamt": funds[k]} for k in sorted(funds) if funds[k]],
                "rows": rows,
                "late": [{"setl_id": s, "setlym": m} for code, s, m in self._late.get(period, ()) if code == fixmedins_code]}


def clearable(result: dict) -> dict | None:
    """The `setlinfo` of a result cleared with its institution, a settlement's or a cancel's; None for
    anything else (a manual claim is paid by the agency, not cleared with the institution)."""
    output = result["output"] if result["infcode"] == 0 else None
    if not output or "setlinfo" not in output or "claim" in output:
        return None
    return output["setlinfo"]


def booked(result: dict, places: Callable[[str], tuple[str, str]]) -> Entry | None:
    """The clearing entry of a ledger result (None when it has none); `places(setl_id)` gives a
    settlement's (treatment place, insured place): `Ledger.places`."""
    info = clearable(result)
    return None if info is None else entry(info, *places(info.get("init_setl_id") or info["setl_id"]))


def close_ack(event: ClearingCloseEvent) -> dict:
    """The answer to a month's close: its statements follow (on clearing.statements, streaming)."""
    return ok(event, {"setlym": event.input.setlym})


def answer(clearing: Clearing, event: ClearingCloseEvent | ReconcileEvent) -> tuple[dict, list[dict]]:
    """The result envelope of a clearing event and, for a close, the statements it writes."""
    if isinstance(event, ClearingCloseEvent):
        return close_ack(event), clearing.close(event.input.setlym) or []
    d = event.input
    theirs = {"medfee_sumamt": d.medfee_sumamt, "fund_pay_sumamt": d.fund_pay_sumamt, "acct_pay": d.acct_pay,
              "fixmedins_setl_cnt": d.fixmedins_setl_cnt}
    return ok(event, clearing.reconcile(event.fixmedins_code, d.stmt_begndate, d.stmt_enddate, theirs, d.setl_ids)), []


def _describe(out: dict) -> str:
    if out["stmt_rslt"] == "0":
        return f"balanced: {out['fixmedins_setl_cnt']} settlements, medfee_sumamt {out['medfee_sumamt']}"
    parts = [f"{d['field']} institution {d['institution']} vs yibao {d['yibao']} (difference {d['difference']})"
             for d in out["differences"]]
    for key, label in (("missing_in_yibao", "not in yibao"), ("missing_at_institution", "not listed by the institution")):
        if out.get(key):
            parts.append(f"{len(out[key])} {label}: {', '.join(out[key][:10])}{' …' if len(out[key]) > 10 else ''}")
    return "not balanced: " + "; ".join(parts)
