"""普通住院: inpatient care (seed 002 二、14, 二、15, 二、16).

Deductible by the admission's ordinal in the natural year and the level (halved at 70+), ratio by
level and status, the merged basic cap of 100000, then 大额 90% (R5). Retirees aged 70+ get at least
80% of the policy range from the basic fund (R6).
"""
from __future__ import annotations

from .claim import Claim, Pooled
from .money import ZERO, fen, num, pct
from .pooling import admission_deductible, cap_room, eligible_expr, merged_cap_tiers, pay_through


def settle(claim: Claim) -> Pooled:
    pooled = Pooled("inpatient")
    ordinal = min(claim.ytd.adm_cnt + 1, 3)
    pooled.add("adm_cnt", 1)
    deductible = admission_deductible(claim, pooled, ordinal, f"admission {claim.ytd.adm_cnt + 1} of the year")
    eligible, expr = eligible_expr(claim, deductible)
    tiers = merged_cap_tiers(claim)
    pay_through(claim, pooled, eligible, expr, tiers)
    if claim.retired and claim.elderly:
        _floor(claim, pooled, tiers[0])
    return pooled


def _floor(claim: Claim, pooled: Pooled, basic) -> None:
    """R6: top the basic fund up to 80% of the policy range, within its cap room."""
    ratio = claim.policy.elderly.inpatient_floor_ratio
    target = fen(claim.bill.inscp_scp_amt * ratio)
    if pooled.hifp_pay >= target:
        return
    topup = min(target - pooled.hifp_pay, cap_room(claim, pooled, basic))
    if topup <= ZERO:
        return
    pooled.steps.append((
        "elderly.inpatient_floor_ratio",
        f"{num(claim.bill.inscp_scp_amt)}×{pct(ratio)}={num(target)} > {num(pooled.hifp_pay)}: "
        f"tops up {num(topup)}",
    ))
    pooled.hifp_pay += topup
    pooled.add("ip_pool_paid", topup)
