"""门诊特殊病: special-disease outpatient for registered diseases (seed 002 二、10, 二、11).

Deductible 880 once per natural year (halved at 70+), separate from inpatient deductibles; the
inpatient ratio of the treating level and status; the merged inpatient cap, then 大额 (R5, R7).
"""
from __future__ import annotations

from .claim import Claim, Pooled
from .pooling import eligible_expr, elderly_halved, merged_cap_tiers, pay_through, yearly_deductible


def settle(claim: Claim) -> Pooled:
    pooled = Pooled("special_outpatient")
    standard = elderly_halved(claim, pooled, claim.policy.special.deductible, "起付标准")
    deductible = yearly_deductible(claim, pooled, standard, "special_dedc_paid", "special.deductible")
    pooled.act_pay_dedc = deductible
    eligible, expr = eligible_expr(claim, deductible)
    pay_through(claim, pooled, eligible, expr, merged_cap_tiers(claim))
    return pooled
