"""In-province settlement: route a request to its benefit, then assistance, the personal account, the result.

`settle()` is pure: it takes the request and everything the ledger knows that it needs, and returns
the result (`setlinfo`, `setldetail`, the derivation) with the accumulator delta and the account
debit. It checks the money invariants before returning; a broken one raises `InvariantBroken`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from schemas.models import InstitutionData, PersonData, SettlementRequest

from . import (
    assistance,
    chronic_outpatient,
    day_surgery,
    emergency_rescue,
    family_account,
    general_outpatient,
    inpatient,
    maternity,
    special_outpatient,
)
from .accumulators import Accumulators, Delta
from .claim import Claim, Pooled
from .exceptions import SettlementRefused, check
from .ids import settlement_id
from .fees import split_bill
from .money import FEN, ZERO
from .policy import Catalog, Policy

RATIO_PLACES = Decimal("0.0001")
FUND_NAMES = {
    "310100": "职工基本医疗保险统筹基金",
    "510100": "生育基金",
    "330100": "职工大额医疗费用补助",
    "610100": "医疗救助基金",
}
CLR_TYPE = {"2207": "11", "2304": "21", "2102": "41"}
MONEY_FIELDS = (
    "medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
    "act_pay_dedc", "hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay",
    "oth_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "acct_mulaid_pay", "psn_cash_pay",
    "hosp_part_amt", "pkg_surplus_pay", "balc",
)


@dataclass(frozen=True, slots=True)
class Registration:
    code: str
    kind: str  # "chronic" or "special"
    begndate: dt.date
    enddate: dt.date | None

    def active_on(self, day: dt.date) -> bool:
        return self.begndate <= day and (self.enddate is None or day <= self.enddate)


@dataclass(frozen=True, slots=True)
class Outcome:
    output: dict  # {"setlinfo": ..., "setldetail": [...]}
    warn_msg: str | None
    delta: Delta
    acct_pay: Decimal  # from the user's own account
    drawn: tuple[tuple[str, Decimal], ...] = ()  # (authorizer psn_no, amount) of family mutual aid


def age_on(brdy: dt.date, day: dt.date) -> int:
    return day.year - brdy.year - ((day.month, day.day) < (brdy.month, brdy.day))


def settle(
    req: SettlementRequest,
    person: PersonData,
    balance: Decimal,
    institution: InstitutionData,
    rx_level: int | None,
    policy: Policy,
    ytd: Accumulators,
    registrations: list[Registration],
    art_claimed_ever: bool,
    authorizers: list[tuple[str, Decimal]],
    catalog: Catalog | None,
) -> Outcome:
    """Settle one request. `authorizers`: (psn_no, balance) of the family accounts that may pay for
    this person on the settlement date (`family_account.authorizers_on`). `catalog`: the treatment
    place's catalogue data (就医地目录, `PolicyBook.catalog_at`), None where yibao holds none."""
    data = req.input.data
    day = data.setl_time.date()
    if person.brdy > day:
        raise SettlementRefused("BAD_BIRTH_DATE", f"the person's birth date {person.brdy} is after the settlement date "
                                f"{day}: correct the person record (infno person) and send the settlement again")
    benefit = policy.med_types.get(data.med_type)
    if benefit is None:
        raise SettlementRefused("UNKNOWN_MED_TYPE", f"med_type {data.med_type} has no benefit in {policy.id}; known: "
                                f"{', '.join(sorted(policy.med_types))}")
    _check_channel(req, benefit, institution)
    warnings: list[str] = []
    steps: list = []
    bill = split_bill(req.input.feedetail, catalog, policy.account.not_payable_categories, steps)
    active = [r for r in registrations if r.active_on(day)]
    level = institution.hosp_lv
    if benefit == "pharmacy" and data.rx_fixmedins_code and institution.outpatient_pooling:
        if rx_level is None:
            raise SettlementRefused("UNKNOWN_PRESCRIBER", f"prescribing institution {data.rx_fixmedins_code} is "
                                    "unknown: send its institution record or rx_hosp_lv")
        level = rx_level
    claim = Claim(
        policy=policy, setl_date=day, age=age_on(person.brdy, day), retired=person.psn_type == "1201",
        level=level or 1,  # a pharmacy has no level; only an account-only purchase gets here without one
        bill=bill, ytd=ytd, chronic_count=sum(r.kind == "chronic" for r in active),
    )

    if benefit == "general_outpatient":
        pooled = general_outpatient.settle(claim)
    elif benefit == "emergency_rescue":
        pooled = emergency_rescue.settle(claim)
    elif benefit == "inpatient":
        pooled = inpatient.settle(claim)
    elif benefit == "day_surgery":
        if not institution.day_surgery:
            raise SettlementRefused("DAY_SURGERY_NOT_OPEN", f"{institution.fixmedins_code} is not opened for day surgery")
        pooled = day_surgery.settle(claim)
    elif benefit == "chronic_special_outpatient":
        pooled = _disease_or_general_outpatient(claim, data.dise_codg, active, warnings)
    elif benefit == "pharmacy":
        pooled = _pharmacy(claim, req, institution, active, warnings)
    else:  # maternity, family_planning
        if not institution.matn:
            raise SettlementRefused("MATERNITY_NOT_OPEN",
                                    f"{institution.fixmedins_code} is not opened for maternity/family-planning payment")
        pooled = maternity.settle(claim, data, person.gend, art_claimed_ever, benefit == "family_planning")

    if pooled.assistance_applies and person.maf_lv is not None:
        assistance.apply(claim, pooled, person.maf_lv, person.maf_base_inc)
    pooled.steps[:0] = steps
    return _compose(req, person, balance, authorizers, policy, bill, pooled, warnings)


def _check_channel(req: SettlementRequest, benefit: str, institution: InstitutionData) -> None:
    data = req.input.data
    if data.mid_setl_flag == "1":
        raise SettlementRefused("MID_SETTLEMENT_UNSUPPORTED", "mid-stay settlement (mid_setl_flag=1) is not supported yet")
    if (benefit == "pharmacy") != (req.infno == "2102"):
        raise SettlementRefused("WRONG_INFNO", f"med_type {data.med_type} ({benefit}) cannot be settled with infno {req.infno}")
    if benefit == "inpatient" and req.infno != "2304":
        raise SettlementRefused("WRONG_INFNO", "inpatient care (med_type 21) is settled with infno 2304")
    if (institution.fixmedins_type == "2") != (benefit == "pharmacy"):
        kind = "a pharmacy" if institution.fixmedins_type == "2" else "a medical institution"
        raise SettlementRefused("WRONG_INSTITUTION", f"{institution.fixmedins_code} is {kind}; {benefit} is not settled there")


def _registered_disease(claim: Claim, code: str | None, active: list[Registration]) -> tuple[Pooled | None, str]:
    """The chronic or special benefit when the disease is registered on the day; otherwise None and
    why not (the caller says what applies instead)."""
    if not code:
        return None, "no dise_codg"
    policy = claim.policy
    disease = policy.chronic_disease(code) or policy.special_disease(code)
    if disease is None:
        raise SettlementRefused("UNKNOWN_DISEASE", f"dise_codg {code} is neither a chronic nor a special disease of {policy.id}")
    if not any(r.code == disease.code for r in active):
        # seed 001 问题五 / seed 002 二、8: the benefit only after registration; one cost, one benefit
        return None, f"{disease.code} {disease.name} not registered on {claim.setl_date}"
    if policy.chronic_disease(disease.code):
        return chronic_outpatient.settle(claim), ""
    return special_outpatient.settle(claim), ""


def _disease_or_general_outpatient(claim: Claim, code: str | None, active: list[Registration],
                                   warnings: list[str]) -> Pooled:
    pooled, why = _registered_disease(claim, code, active)
    if pooled is None:
        warnings.append(f"{why}: settled as general outpatient")
        pooled = general_outpatient.settle(claim)
    return pooled


def _pharmacy(claim: Claim, req: SettlementRequest, institution: InstitutionData,
              active: list[Registration], warnings: list[str]) -> Pooled:
    data = req.input.data
    policy = claim.policy
    if data.rx_fixmedins_code and institution.outpatient_pooling:
        if data.dise_codg and policy.pharmacy.dual_channel_chronic_special:
            pooled, why = _registered_disease(claim, data.dise_codg, active)
            if pooled is not None:
                return pooled
            warnings.append(f"{why}: no dual-channel disease benefit")
        if policy.pharmacy.general_outpatient_with_eprescription:
            pooled = general_outpatient.settle(claim)
            pooled.steps.insert(0, ("pharmacy.general_outpatient_with_eprescription",
                                    f"e-prescription of {data.rx_fixmedins_code} (level {claim.level}): its outpatient rules"))
            return pooled
        warnings.append(f"{policy.id}: pharmacy pooling with an e-prescription is not in force; personal account only")
    pooled = Pooled("pharmacy_account", assistance_applies=False)
    pooled.steps.append(("pharmacy", "no pooling for this purchase: personal account and cash"))
    return pooled


def _compose(req, person, balance, authorizers, policy, bill, pooled: Pooled, warnings) -> Outcome:
    data = req.input.data
    fund = pooled.hifp_pay + pooled.hifob_pay + pooled.maf_pay
    psn_part = bill.medfee_sumamt + pooled.pkg_surplus_pay - fund
    check(psn_part >= 0, f"personal part negative: {psn_part}")
    acct_used = data.acct_used_flag or ("1" if req.infno == "2102" else "0")
    acct_pay, drawn, mulaid = ZERO, [], ZERO
    if acct_used == "1":
        payable = max(ZERO, psn_part - bill.not_acct_payable)
        if authorizers:
            acct_pay, drawn = family_account.split(payable, balance, list(authorizers))
        else:  # the common case, kept cheap: the own account alone
            acct_pay = min(balance, payable)
    if drawn:
        mulaid = sum((amount for _, amount in drawn), ZERO)
        left = dict(authorizers)
        check(all(0 < amount <= left[psn_no] for psn_no, amount in drawn), "an authorizer overdrawn")
    cash = psn_part - acct_pay - mulaid
    check(acct_pay >= 0 and cash >= 0 and balance - acct_pay >= 0, "account or cash negative")
    check(bill.medfee_sumamt + pooled.pkg_surplus_pay == fund + acct_pay + mulaid + cash, "result does not balance")
    check(bill.medfee_sumamt == bill.fulamt_ownpay_amt + bill.overlmt_selfpay + bill.preselfpay_amt + bill.inscp_scp_amt,
          "policy range split does not add up")

    setlinfo = {
        "setl_id": settlement_id("S", data.psn_no, req.msgid),
        "mdtrt_id": data.mdtrt_id,
        "psn_no": data.psn_no,
        "insutype": "510" if pooled.fund_pay_type == "510100" else "310",
        "psn_type": person.psn_type,
        "med_type": data.med_type,
        "setl_time": data.setl_time.isoformat(" ", "seconds"),
        "medins_setl_id": req.msgid,
        "fixmedins_code": req.fixmedins_code,
        "medfee_sumamt": bill.medfee_sumamt,
        "fulamt_ownpay_amt": bill.fulamt_ownpay_amt,
        "overlmt_selfpay": bill.overlmt_selfpay,
        "preselfpay_amt": bill.preselfpay_amt,
        "inscp_scp_amt": bill.inscp_scp_amt,
        "act_pay_dedc": pooled.act_pay_dedc,
        "hifp_pay": pooled.hifp_pay,
        "pool_prop_selfpay": pooled.pool_prop.quantize(RATIO_PLACES),
        "cvlserv_pay": ZERO,
        "hifes_pay": ZERO,
        "hifmi_pay": ZERO,
        "hifob_pay": pooled.hifob_pay,
        "maf_pay": pooled.maf_pay,
        "oth_pay": ZERO,
        "fund_pay_sumamt": fund,
        "psn_part_amt": psn_part,
        "acct_pay": acct_pay,
        "acct_mulaid_pay": mulaid,
        "psn_cash_pay": cash,
        "hosp_part_amt": ZERO,
        "pkg_surplus_pay": pooled.pkg_surplus_pay,
        "balc": balance - acct_pay,
    }
    for name in MONEY_FIELDS:
        setlinfo[name] = setlinfo[name].quantize(FEN)
    if drawn:  # who paid what of the family mutual aid, and their balance after
        setlinfo["acct_pay_detl"] = [{"psn_no": psn_no, "acct_pay": amount.quantize(FEN),
                                      "balc": (left[psn_no] - amount).quantize(FEN)} for psn_no, amount in drawn]
    setlinfo.update(clr_type=CLR_TYPE[req.infno], benefit=pooled.benefit, policy_id=policy.id)
    setldetail = [
        {
            "fund_pay_type": fund_type,
            "fund_pay_type_name": FUND_NAMES[fund_type],
            "inscp_scp_amt": bill.inscp_scp_amt.quantize(FEN),
            "fund_payamt": amount.quantize(FEN),
        }
        for fund_type, amount in (
            (pooled.fund_pay_type, pooled.hifp_pay), ("330100", pooled.hifob_pay), ("610100", pooled.maf_pay)
        )
        if amount
    ]
    setlinfo["setl_proc_info"] = [{"key": k, "calc": c} for k, c in pooled.steps]
    return Outcome({"setlinfo": setlinfo, "setldetail": setldetail}, "; ".join(warnings) or None,
                   pooled.delta, acct_pay, tuple(drawn))
