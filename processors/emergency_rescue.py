"""门诊急诊抢救: emergency rescue (seed 002 二、7).

"起付标准、支付比例执行救治医疗机构级别住院起付标准、支付比例，统筹基金年度最高支付限额与住院年度
最高支付限额合并计算". R3: the deductible is the one the next admission would have at the treating
level (the first-admission standard when there was no admission this year); a rescue is not an
admission. Halved at 70+ like the inpatient deductible.
"""
from __future__ import annotations

from .claim import Claim, Pooled
from .pooling import admission_deductible, eligible_expr, merged_cap_tiers, pay_through


def settle(claim: Claim) -> Pooled:
    pooled = Pooled("emergency_rescue")
    ordinal = min(claim.ytd.adm_cnt + 1, 3)
    deductible = admission_deductible(
        claim, pooled, ordinal, f"{claim.ytd.adm_cnt} admissions before: the admission-{ordinal} standard")
    eligible, expr = eligible_expr(claim, deductible)
    pay_through(claim, pooled, eligible, expr, merged_cap_tiers(claim))
    return pooled
