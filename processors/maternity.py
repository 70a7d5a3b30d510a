"""生育 / 计划生育: maternity and family-planning packages, assisted reproduction (seed 002 四、1-3).

Packages are fixed (包干, R8): the fund pays them whatever the bill; when they exceed the bill the
rest goes to the insured (`pkg_surplus_pay`), since 产前检查费 and 营养补助费 are allowances paid
"together with every 生育医疗费用" (四、3). A termination at 7 months or more is a birth (四、1). The
assisted-reproduction subsidy pays the bill up to its cap, once per person, after a successful birth.

Codes (the seeds give none; yibao's, documented in the README):
  matn_type    1 顺产, 2 难产 (产钳助产 or 胎头吸引), 3 剖宫产, 4 流产/终止妊娠 (by geso_mons),
               5 辅助生殖 (assisted reproduction)
  birctrl_type 1 放置宫内节育器, 2 摘取宫内节育器, 3 输卵管结扎术, 4 输精管结扎术,
               5 输卵管复通术, 6 输精管复通术, 7 皮埋术, 8 皮埋取除术, 9 人工流产 (by geso_mons)
"""
from __future__ import annotations

from decimal import Decimal

from schemas.models import SettlementData

from .claim import Claim, Pooled
from .exceptions import SettlementRefused
from .money import ZERO, num

DELIVERIES = {"1": "vaginal_delivery", "2": "difficult_delivery", "3": "caesarean"}
TERMINATION_MATN, ART_MATN = "4", "5"
# The seeds count gestation in months (妊娠4个月, 7个月); the national discharge form sends weeks
# (`geso_val`). A pregnancy month is read as 4 weeks, the obstetric convention by which 28 weeks, the
# start of the perinatal period, is 7 months. `geso_mons`, when sent, wins.
WEEKS_PER_MONTH = 4
FAMILY_PLANNING = {
    "1": "iud_insertion", "2": "iud_removal", "3": "tubal_ligation", "4": "vasectomy",
    "5": "tubal_recanalization", "6": "vas_recanalization", "7": "implant_insertion",
    "8": "implant_removal",
}
TERMINATION_BIRCTRL = "9"


def settle(claim: Claim, data: SettlementData, gend: str | None, art_claimed_ever: bool,
           family_planning: bool) -> Pooled:
    m = claim.policy.maternity
    pooled = Pooled("family_planning" if family_planning else "maternity",
                    fund_pay_type="510100", assistance_applies=False)
    if family_planning:
        code = data.birctrl_type
        if code == TERMINATION_BIRCTRL:
            packages = _termination(claim, data, pooled)
        elif code in FAMILY_PLANNING:
            packages = [FAMILY_PLANNING[code]]
        else:
            raise SettlementRefused("BAD_BIRCTRL_TYPE", f"birctrl_type {code!r} is not one of 1-9 (see README)")
    else:
        code = data.matn_type
        if code not in (*DELIVERIES, TERMINATION_MATN, ART_MATN):
            raise SettlementRefused("BAD_MATN_TYPE", f"matn_type {code!r} is not one of 1-5 (see README)")
        if gend == "1" and data.spus_unemp_flag != "1":
            raise SettlementRefused(
                "MATERNITY_NOT_ELIGIBLE",
                "a male employee's maternity claim is for his non-working spouse: set spus_unemp_flag=1 "
                "(配偶未就业承诺书)",
            )
        if code == ART_MATN:
            return _assisted_reproduction(claim, data, art_claimed_ever, pooled)
        if code in DELIVERIES:
            packages = [DELIVERIES[code], "prenatal_check", "nutrition"]
        else:
            packages = _termination(claim, data, pooled)

    total = ZERO
    for name in packages:
        amount = getattr(m.packages, name)
        total += amount
        pooled.steps.append((f"maternity.packages.{name}", f"{name} {num(amount)}"))
    if "nutrition" in packages:
        fetuses = data.fetus_cnt or data.fetts or 1
        if fetuses > 1:
            extra = m.packages.nutrition_per_extra_fetus * (fetuses - 1)
            total += extra
            pooled.steps.append(("maternity.packages.nutrition_per_extra_fetus",
                                 f"{fetuses} babies: {num(m.packages.nutrition_per_extra_fetus)}×{fetuses - 1}={num(extra)}"))
    _pay_package(claim, pooled, total)
    return pooled


def _termination(claim: Claim, data: SettlementData, pooled: Pooled) -> list[str]:
    months = data.geso_mons
    if months is None and data.geso_val is not None:
        months = data.geso_val // WEEKS_PER_MONTH
        pooled.steps.append(("maternity.termination_months",
                             f"gestation {data.geso_val} weeks = {months} months ({WEEKS_PER_MONTH} weeks a month)"))
    if months is None:
        raise SettlementRefused("MISSING_GESO_MONS", "a termination needs geso_mons (gestation, months) "
                                "or geso_val (weeks)")
    bounds = claim.policy.maternity.termination_months
    if months < bounds.lower:
        return ["abortion_under_4_months"]
    if months < bounds.birth:
        return ["abortion_4_to_7_months"]
    pooled.steps.append(("maternity.termination_months",
                         f"termination at {months} months >= {bounds.birth}: paid as a birth (顺产)"))
    return ["vaginal_delivery", "prenatal_check", "nutrition"]


def _pay_package(claim: Claim, pooled: Pooled, total: Decimal) -> None:
    bill = claim.bill.medfee_sumamt
    pooled.hifp_pay = total
    pooled.pkg_surplus_pay = max(ZERO, total - bill)
    pooled.steps.append(("maternity.packages",
                         f"packages {num(total)}, bill {num(bill)}: personal {num(max(ZERO, bill - total))}, "
                         f"surplus to the insured {num(pooled.pkg_surplus_pay)}"))


def _assisted_reproduction(claim: Claim, data: SettlementData, art_claimed_ever: bool, pooled: Pooled) -> Pooled:
    if data.art_birth_flag != "1":
        raise SettlementRefused("ART_NOT_ELIGIBLE",
                                "the assisted-reproduction subsidy requires a successful birth (art_birth_flag=1)")
    if art_claimed_ever:
        raise SettlementRefused("ART_ALREADY_CLAIMED", "the assisted-reproduction subsidy is paid once per person")
    cap = claim.policy.maternity.assisted_reproduction_cap
    pooled.hifp_pay = min(cap, claim.bill.medfee_sumamt)
    pooled.add("art_claimed", 1)
    pooled.steps.append(("maternity.assisted_reproduction_cap",
                         f"min(bill {num(claim.bill.medfee_sumamt)}, {num(cap)})={num(pooled.hifp_pay)}, once"))
    return pooled
