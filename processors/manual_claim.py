"""Manual reimbursement (零星报销): care paid in full at an institution and claimed at the insured place.

Seed 002 七: care that could not be settled directly (异地 without a filing, an outage, ...) is
claimed with its materials (七、2: invoice, fee list, and for inpatient care the illness certificate
and discharge summary; emergency care its certificate; an accident its finding or a written promise).
Seed 000 一、6/7: the claim is done within 15 working days (promised) and 20 (legal). The money
follows the insured place's rules on the treatment place's catalogue, like a direct settlement; the
claimant is paid the fund's share, so the personal account is not debited. The working-day counts
are policy data (`manual_claim.yaml`); which days are working days is China's calendar as
`chinesecalendar` ships it (weekends, public holidays, swapped weekend workdays).
"""
from __future__ import annotations

import datetime as dt

import chinese_calendar

from .exceptions import SettlementRefused
from .policy import ManualClaim

INPATIENT = frozenset({"inpatient", "day_surgery", "maternity"})  # the benefits claimed with a discharge summary


def check_materials(rules: ManualClaim, benefit: str | None, med_type: str, emergency: bool, accident: bool,
                      given: list[str]) -> None:
    """Refuse MATERIALS_MISSING, naming what the claim lacks for this kind of care."""
    kind = "inpatient" if benefit in INPATIENT and med_type != "51" else "outpatient"  # 51: maternity outpatient
    needed = set(rules.materials[kind])
    if emergency:
        needed |= rules.materials["emergency"]
    if accident:
        needed |= rules.materials["accident"]
    missing = sorted(needed.difference(given))
    if missing:
        raise SettlementRefused("MATERIALS_MISSING", f"a manual claim for {kind} care needs {', '.join(sorted(needed))}; "
                                f"missing: {', '.join(missing)} (seed 002 七、2)")


def working_days_after(day: dt.date, count: int) -> tuple[dt.date, str | None]:
    """The `count`-th working day after `day`, and a note when the calendar's years run out (then
    beyond them only weekends are days off)."""
    note = None
    while count:
        day += dt.timedelta(days=1)
        try:
            working = chinese_calendar.is_workday(day)
        except NotImplementedError:  # a year the package has no holiday data for
            working = day.weekday() < 5
            note = (f"the holiday calendar (chinesecalendar) has no data for {day.year}: from then on only "
                    "weekends were taken as days off")
        count -= working
    return day, note


def claim_block(rules: ManualClaim, claim_date: dt.date) -> dict:
    """The `claim` block of the result: when it was made and by when it is done."""
    promised, note = working_days_after(claim_date, rules.promised_working_days)
    legal, late_note = working_days_after(claim_date, rules.legal_working_days)
    block = {"claim_date": claim_date.isoformat(), "promised_by": promised.isoformat(), "due_by": legal.isoformat()}
    if note or late_note:
        block["calendar_note"] = note or late_note
    return block
