"""门诊慢性病: chronic-disease outpatient for registered diseases (seed 002 二、8, 二、9).

Deductible 300 once per natural year (halved at 70+), 80%, a separate cap by the number of
registered chronic diseases (2000 + 1000 each, at most 5000); nothing beyond it (R7).
"""
from __future__ import annotations

from .claim import Claim, Pooled
from .money import num
from .pooling import Tier, eligible_expr, elderly_halved, pay_through, yearly_deductible


def settle(claim: Claim) -> Pooled:
    chronic = claim.policy.chronic
    pooled = Pooled("chronic_outpatient")
    standard = elderly_halved(claim, pooled, chronic.deductible, "起付标准")
    deductible = yearly_deductible(claim, pooled, standard, "chronic_dedc_paid", "chronic.deductible")
    pooled.act_pay_dedc = deductible
    caps = chronic.cap_by_disease_count
    cap = caps[min(claim.chronic_count, max(caps))]
    pooled.steps.append(("chronic.cap_by_disease_count", f"{claim.chronic_count} registered: annual cap {num(cap)}"))
    eligible, expr = eligible_expr(claim, deductible)
    pay_through(claim, pooled, eligible, expr,
                [Tier("chronic.ratio", chronic.ratio, "hifp_pay", "chronic_pool_paid", cap)])
    return pooled
