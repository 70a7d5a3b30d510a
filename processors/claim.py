"""What a benefit rule receives (`Claim`) and returns (`Pooled`): plain data, no behaviour."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from .accumulators import Accumulators, Delta
from .fees import BillTotals
from .money import ZERO
from .policy import Policy

Step = tuple[str, str]  # (policy key, calculation as a person writes it)


@dataclass(frozen=True, slots=True)
class Claim:
    policy: Policy
    setl_date: dt.date
    age: int
    retired: bool
    level: int  # level of the treating institution (or of the prescribing one, for a pharmacy)
    bill: BillTotals
    ytd: Accumulators  # this person's totals of the settlement's natural year, before it
    chronic_count: int = 0  # chronic diseases registered on the settlement date

    @property
    def elderly(self) -> bool:
        """R1: 70岁以上 = aged 70 or more on the settlement date."""
        return self.age >= self.policy.elderly.age


@dataclass(slots=True)
class Pooled:
    """What the basic fund, 大额 and packages pay for one claim, and how the totals change."""

    benefit: str
    act_pay_dedc: Decimal = ZERO
    hifp_pay: Decimal = ZERO
    hifob_pay: Decimal = ZERO
    maf_pay: Decimal = ZERO
    pool_prop: Decimal = ZERO  # the basic fund's ratio of the first tier (pool_prop_selfpay)
    pkg_surplus_pay: Decimal = ZERO  # package money beyond the bill, paid to the insured (R8)
    fund_pay_type: str = "310100"
    assistance_applies: bool = True
    delta: Delta = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    def add(self, name: str, amount) -> None:
        if amount:
            self.delta[name] = self.delta.get(name, 0) + amount
