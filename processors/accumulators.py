"""Year-to-date totals of one person in one natural year: the running state the rules read and change.

Settlements return a `Delta`; the ledger adds it, and a cancel subtracts the same delta, which
restores the totals exactly. Every total restarts on 1 January (R2): a new year is a new record.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from .exceptions import check

ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class Accumulators:
    op_pool_paid: Decimal = ZERO  # general outpatient pooling paid, against its own cap
    ip_pool_paid: Decimal = ZERO  # basic fund paid against the merged inpatient cap (R5)
    chronic_pool_paid: Decimal = ZERO  # chronic-disease pooling paid, against its own cap (R7)
    hifob_paid: Decimal = ZERO  # 大额 paid (no cap)
    adm_cnt: int = 0  # inpatient admissions settled (R2)
    chronic_dedc_paid: Decimal = ZERO  # chronic deductible met this year (R7)
    special_dedc_paid: Decimal = ZERO  # special-disease deductible met this year (R7)
    maf_dedc_paid: Decimal = ZERO  # medical-assistance deductible met this year (R9)
    maf_paid: Decimal = ZERO  # medical assistance paid
    art_claimed: int = 0  # assisted-reproduction subsidies claimed (allowed once per person)

    def plus(self, delta: "Delta", sign: int = 1) -> "Accumulators":
        """The totals after adding (sign=1) or removing (sign=-1) a settlement's delta."""
        values = self.as_dict()
        for name, amount in delta.items():
            value = values[name] + sign * amount
            if value < 0:
                check(False, f"accumulator {name} would go negative ({value})")
            values[name] = value
        return Accumulators(**values)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(Accumulators))
Delta = dict  # accumulator field name -> amount added by one settlement
EMPTY = Accumulators()
