"""门诊急诊抢救: emergency rescue (seed 002 二、7).

"起付标准、支付比例执行救治医疗机构级别住院起付标准、支付比例，统筹基金年度最高支付限额与住院年度
最高支付限额合并计算". R3: the deductible is the one the next admission would have at the treating
level (the first-admission standard when there was no admission this year); a rescue is not an
admission. Halved at 70+ like the inpatient deductible.
"""
from __future__ import annotations

from .claim import Claim, Pooled
from .money import num
from .pooling import eligible_expr, elderly_halved, merged_cap_tiers, pay_through


def settle(claim: Claim) -> Pooled:
    pooled = Pooled("emergency_rescue")
    ordinal = min(claim.ytd.adm_cnt + 1, 3)
    standard = claim.policy.inpatient.deductible_by_admission[ordinal][claim.level]
    pooled.steps.append((
        "inpatient.deductible_by_admission",
        f"{claim.ytd.adm_cnt} admissions before: admission-{ordinal} standard at level {claim.level} {num(standard)}",
    ))
    standard = elderly_halved(claim, pooled, standard, "起付标准")
    deductible = min(standard, claim.bill.inscp_scp_amt)
    pooled.act_pay_dedc = deductible
    eligible, expr = eligible_expr(claim, deductible)
    pay_through(claim, pooled, eligible, expr, merged_cap_tiers(claim))
    return pooled
