"""普通门诊统筹: general outpatient pooling (seed 002 二、6; from 2024-11-01 seed 001 问题三/四).

Per visit: (policy range - deductible of the level) × ratio of the level and status, until the annual
outpatient cap; beyond it the inpatient ratio against the merged inpatient cap, then 大额 (R4, R5).
"""
from __future__ import annotations

from .claim import Claim, Pooled
from .money import num
from .pooling import Tier, eligible_expr, merged_cap_tiers, pay_through


def settle(claim: Claim) -> Pooled:
    go = claim.policy.general_outpatient
    pooled = Pooled("general_outpatient")
    standard = go.deductible[claim.level]
    deductible = min(standard, claim.bill.inscp_scp_amt)
    pooled.act_pay_dedc = deductible
    pooled.steps.append(("general_outpatient.deductible", f"level {claim.level} 起付标准 {num(standard)}"))
    ratio = go.ratio_active[claim.level]
    key = "general_outpatient.ratio_active"
    if claim.retired:
        ratio += go.retiree_ratio_bonus
        key = "general_outpatient.ratio_active+retiree_ratio_bonus"
    eligible, expr = eligible_expr(claim, deductible)
    tiers = [Tier(key, ratio, "hifp_pay", "op_pool_paid", go.annual_cap), *merged_cap_tiers(claim)]
    pay_through(claim, pooled, eligible, expr, tiers)
    return pooled
