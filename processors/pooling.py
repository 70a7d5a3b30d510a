"""Pay eligible cost through a chain of funds, each at its ratio until its annual cap is used up.

R4/R5: when a tier's cap room is smaller than ratio × remaining cost, the tier pays the room and
covers the cost room ÷ ratio (rounded half-up to the fen: the cap split point); the rest of the cost
moves to the next tier. A tier without a cap (大额) pays everything left. Cost left after the last
tier stays with the person (the chronic-disease cap, R7).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .claim import Claim, Pooled
from .money import ZERO, fen, num, pct


@dataclass(frozen=True, slots=True)
class Tier:
    key: str  # policy key of the ratio, named in the derivation
    ratio: Decimal
    fund: str  # "hifp_pay" or "hifob_pay"
    used_field: str | None  # accumulator counting what this cap has paid; None: no cap
    cap: Decimal | None = None


def cap_room(claim: Claim, pooled: Pooled, tier: Tier) -> Decimal:
    used = getattr(claim.ytd, tier.used_field) + pooled.delta.get(tier.used_field, ZERO)
    return max(ZERO, tier.cap - used)


def pay_through(claim: Claim, pooled: Pooled, eligible: Decimal, expr: str, tiers: list[Tier]) -> None:
    """Pay `eligible` (written as `expr` in the derivation) through `tiers`, updating `pooled`."""
    remaining = eligible
    for i, tier in enumerate(tiers):
        if remaining <= 0:
            break
        shown = expr if i == 0 else num(remaining)
        full = fen(remaining * tier.ratio)
        if i == 0:
            pooled.pool_prop = tier.ratio
        if tier.cap is None or full <= (room := cap_room(claim, pooled, tier)):
            pay, covered = full, remaining
            pooled.steps.append((tier.key, f"{shown}×{pct(tier.ratio)}={num(pay)}"))
        else:
            pay = room
            covered = min(remaining, fen(room / tier.ratio))
            pooled.steps.append((
                tier.key,
                f"{shown}×{pct(tier.ratio)}={num(full)} > cap room {num(room)}: pays {num(room)}, "
                f"covering {num(room)}÷{pct(tier.ratio)}={num(covered)}; {num(remaining - covered)} moves on",
            ))
        setattr(pooled, tier.fund, getattr(pooled, tier.fund) + pay)
        if tier.used_field:
            pooled.add(tier.used_field, pay)
        remaining -= covered
    if remaining > 0:
        pooled.steps.append(("pooling.beyond_cap", f"{num(remaining)} beyond the cap: personal"))


def eligible_expr(claim: Claim, deductible: Decimal) -> tuple[Decimal, str]:
    """Policy-range cost after the deductible, written as seed 001 writes it: (500-20-5)."""
    b = claim.bill
    parts = [num(b.medfee_sumamt)]
    for amount in (b.fulamt_ownpay_amt, b.overlmt_selfpay, deductible, b.preselfpay_amt):
        if amount:
            parts.append(num(amount))
    expr = "-".join(parts)
    return b.inscp_scp_amt - deductible, f"({expr})" if len(parts) > 1 else expr


def inpatient_ratio(claim: Claim) -> tuple[Decimal, str]:
    ip = claim.policy.inpatient
    if claim.retired:
        return ip.ratio_retired[claim.level], "inpatient.ratio_retired"
    return ip.ratio_active[claim.level], "inpatient.ratio_active"


def merged_cap_tiers(claim: Claim) -> list[Tier]:
    """Inpatient ratio against the merged basic cap, then 大额 (R5)."""
    ratio, key = inpatient_ratio(claim)
    return [
        Tier(key, ratio, "hifp_pay", "ip_pool_paid", claim.policy.inpatient.annual_cap),
        Tier("serious_illness.ratio", claim.policy.serious_illness.ratio, "hifob_pay", "hifob_paid"),
    ]


def elderly_halved(claim: Claim, pooled: Pooled, standard: Decimal, key: str) -> Decimal:
    """The deductible standard, halved for people aged 70 or more (elderly.yaml reading)."""
    if not claim.elderly:
        return standard
    factor = claim.policy.elderly.deductible_factor
    halved = fen(standard * factor)
    pooled.steps.append(("elderly.deductible_factor", f"age {claim.age}: {key} {num(standard)}×{num(factor)}={num(halved)}"))
    return halved


def admission_deductible(claim: Claim, pooled: Pooled, ordinal: int, what: str) -> Decimal:
    """The inpatient deductible of an admission ordinal at the treating level, halved at 70+,
    capped by the policy range; recorded as the settlement's act_pay_dedc."""
    standard = claim.policy.inpatient.deductible_by_admission[ordinal][claim.level]
    pooled.steps.append(("inpatient.deductible_by_admission", f"{what} at level {claim.level}: 起付标准 {num(standard)}"))
    standard = elderly_halved(claim, pooled, standard, "起付标准")
    pooled.act_pay_dedc = min(standard, claim.bill.inscp_scp_amt)
    return pooled.act_pay_dedc


def yearly_deductible(claim: Claim, pooled: Pooled, standard: Decimal, met_field: str, key: str) -> Decimal:
    """A deductible met once per natural year: the part still open, capped by the policy range."""
    met = getattr(claim.ytd, met_field)
    due = min(max(ZERO, standard - met), claim.bill.inscp_scp_amt)
    pooled.steps.append((key, f"起付标准 {num(standard)}, met before {num(met)}: {num(due)} now"))
    pooled.add(met_field, due)
    return due
