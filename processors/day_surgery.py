"""日间手术: day surgery at institutions opened for it (seed 002 二、13).

R3: the deductible is half of the level's first-admission inpatient deductible, per day-surgery
settlement, separate from inpatient deductibles; not an admission; inpatient ratio; merged cap, 大额.
"""
from __future__ import annotations

from .claim import Claim, Pooled
from .money import fen, num
from .pooling import eligible_expr, merged_cap_tiers, pay_through


def settle(claim: Claim) -> Pooled:
    pooled = Pooled("day_surgery")
    first = claim.policy.inpatient.deductible_by_admission[1][claim.level]
    factor = claim.policy.day_surgery.deductible_factor
    standard = fen(first * factor)
    pooled.steps.append((
        "day_surgery.deductible_factor",
        f"first-admission 起付标准 at level {claim.level} {num(first)}×{num(factor)}={num(standard)}",
    ))
    deductible = min(standard, claim.bill.inscp_scp_amt)
    pooled.act_pay_dedc = deductible
    eligible, expr = eligible_expr(claim, deductible)
    pay_through(claim, pooled, eligible, expr, merged_cap_tiers(claim))
    return pooled
