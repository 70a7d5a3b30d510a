"""医疗救助: medical assistance for hardship employees, after the basic fund and 大额 (seed 002 三、2).

R9: on the policy-range burden left after the basic fund and 大额; the deductible is the stated base
income × 10% (deep) or × 25% (relative hardship), met cumulatively over the natural year; then 60% /
50%.
"""
from __future__ import annotations

from decimal import Decimal

from .claim import Claim, Pooled
from .money import ZERO, fen, num, pct


def apply(claim: Claim, pooled: Pooled, level: str, base_income: Decimal) -> None:
    a = claim.policy.assistance
    burden = max(ZERO, claim.bill.inscp_scp_amt - pooled.hifp_pay - pooled.hifob_pay)
    if burden == 0:
        return
    rate, ratio = getattr(a.deductible_rate, level), getattr(a.ratio, level)
    standard = fen(base_income * rate)
    met = claim.ytd.maf_dedc_paid
    deductible = min(max(ZERO, standard - met), burden)
    pooled.add("maf_dedc_paid", deductible)
    pooled.steps.append((
        "assistance.deductible_rate",
        f"{level}: {num(base_income)}×{pct(rate)}={num(standard)} 起付, met before {num(met)}: {num(deductible)} now",
    ))
    paid = fen((burden - deductible) * ratio)
    pooled.maf_pay = paid
    pooled.add("maf_paid", paid)
    pooled.steps.append(("assistance.ratio", f"({num(burden)}-{num(deductible)})×{pct(ratio)}={num(paid)}"))
