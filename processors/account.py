"""The personal account's monthly credit (划入): pure, from the rule set in force on the month's first day.

Seed 001 六 (from 2024-11-01): an active member's account gets 2% of the month's contribution base,
of which 0.2% goes to long-term-care insurance; a retiree gets a fixed 106 yuan a month, 142 at 70
and over. Seed 002 (before): 2% of the base, all to the account, and no figure for retirees, so a
retiree's credit for such a month is refused. Each share is rounded half-up to the fen, the
long-term-care share first: account + LTC = the rounded 2%.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from schemas.models import PersonData

from .exceptions import SettlementRefused
from .money import ZERO, fen
from .policy import Policy
from .settlement import age_on


@dataclass(frozen=True, slots=True)
class Credit:
    to_account: Decimal
    to_ltc: Decimal
    warn_msg: str | None = None


def monthly_credit(policy: Policy, person: PersonData, month_start: dt.date, base: Decimal | None) -> Credit:
    rules = policy.account
    if person.psn_type == "1201":  # retired
        if rules.retiree_credit_age is None:
            raise SettlementRefused("NO_CREDIT_RULE", f"{policy.id} gives no fixed monthly credit for retirees "
                                    f"(the seed names none) for {month_start:%Y-%m}")
        age = age_on(person.brdy, month_start)
        older = age >= rules.retiree_credit_age
        amount = rules.retiree_credit_from_age if older else rules.retiree_credit_under_age
        warn = "contrib_base is ignored: a retiree's credit is a fixed amount" if base is not None else None
        return Credit(fen(amount), ZERO, warn)
    if base is None:
        raise SettlementRefused("MISSING_BASE", "an active member's credit is a share of input.contrib_base "
                                "(the month's contribution base): send it")
    whole = fen(base * rules.active_credit_rate)
    ltc = fen(base * rules.active_credit_ltc_rate)
    return Credit(whole - ltc, ltc)
