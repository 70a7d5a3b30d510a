"""Remote care (异地就医): where a settlement happens relative to where the person is insured, whether
it needs a filing (备案) in force, and what the result says about it.

Seed 004 (Lincang notice, the provincial rule for Yunnan-insured people): care in another prefecture
of the province needs no filing (省内异地就医免备案); care in another province is settled directly only
with a filing, which names a prefecture (a province for 北京、天津、上海、重庆、海南、西藏、新疆兵团) and
any open designated institution there (对具体定点医疗机构无限制); a temporary filing is valid for 3
months; a self-referred temporary trip is paid at a reduced ratio the seeds give no figure for.
Seed 003 (Shanxi) deems two kinds of care filed without a filing: emergency care the treating
hospital marks (急诊标识), and non-emergency care without a referral, paid under that category's rules.
The numbers are policy data (`remote_care.yaml`); the money still follows the insured place's
rules (就医地目录、参保地政策): this module only decides whether, and says how.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import regions
from .exceptions import SettlementRefused
from .policy import Policy


@dataclass(frozen=True, slots=True)
class Filing:
    filing_type: str
    admdvs: str  # a prefecture (xxxx00) or, where filings name the province, a province (xx0000)
    begndate: dt.date
    enddate: dt.date | None = None  # exclusive: not in force from this day

    def in_force(self, day: dt.date) -> bool:
        return self.begndate <= day and (self.enddate is None or day < self.enddate)

    def covers(self, treated: str) -> bool:
        return treated.startswith(regions.prefecture(self.admdvs))


def filed_place(policy: Policy, admdvs: str) -> str:
    """The place a filing names: the prefecture of `admdvs`, or its province where filings stop there."""
    if regions.province(admdvs) in policy.remote_care.province_level_filing:
        return admdvs[:2] + "0000"
    return admdvs[:4] + "00"


def filing_end(policy: Policy, filing_type: str, begndate: dt.date, enddate: dt.date | None) -> dt.date | None:
    """A temporary filing ends `temporary_filing_months` after it starts (or earlier, if asked); where
    the policy gives no such limit, it holds like the others, until its end date or a cancel."""
    if filing_type != "temporary" or policy.remote_care.temporary_filing_months is None:
        return enddate
    months = begndate.month - 1 + policy.remote_care.temporary_filing_months
    year, month = begndate.year + months // 12, months % 12 + 1
    day = min(begndate.day, _days_in(year, month))
    limit = dt.date(year, month, day)
    return limit if enddate is None else min(enddate, limit)


def _days_in(year: int, month: int) -> int:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


def scope(insured: str, treated: str) -> str:
    if treated.startswith(regions.prefecture(insured)):
        return "local"
    return "in_province" if regions.province(treated) == regions.province(insured) else "cross_province"


def decide(policy: Policy, insured: str, treated: str, day: dt.date, filings: list[Filing],
           emergency: bool = False, claimed: bool = False) -> dict | None:
    """The remote-care block of a settlement's result (None for local care), or SettlementRefused
    (NOT_FILED, with the remedy) when the care needs a filing, none is in force and the insured
    place does not deem this care filed. `emergency`: the treating hospital marked it (急诊标识).
    `claimed`: a manual claim (零星报销), the remedy itself: no filing is asked for."""
    where = scope(insured, treated)
    if where == "local":
        return None
    if not regions.known(treated):
        raise SettlementRefused("UNKNOWN_REGION", f"mdtrtarea_admvs {treated} is not a GB/T 2260 region code "
                                f"(table of {regions.DATA_AS_OF})")
    rules = policy.remote_care
    required = rules.in_province_filing_required if where == "in_province" else rules.cross_province_filing_required
    filing = next((f for f in reversed(filings) if f.in_force(day) and f.covers(treated)), None)
    kind = "emergency" if emergency else "unreferred"
    deemed = kind if required and filing is None and kind in rules.deemed_filed else None
    unfiled = required and filing is None and deemed is None
    if unfiled and not claimed:
        place = filed_place(policy, treated)
        months = rules.temporary_filing_months
        valid = f" (a temporary filing is valid {months} months)" if months else ""
        raise SettlementRefused(
            "NOT_FILED",
            f"care in {regions.name(treated)} ({treated}) is {where.replace('_', '-')} for a person insured in "
            f"{regions.name(insured)} ({insured}): direct settlement needs a remote-care filing (异地就医备案) for "
            f"{regions.name(place)} ({place}) in force on {day.isoformat()}, and there is none. Remedy: pay the bill "
            f"in full and claim manual reimbursement (零星报销) at the insured place, or file{valid} and settle again")
    block = {"scope": where, "mdtrtarea_admvs": treated, "mdtrtarea_name": regions.name(treated),
             "insuplc_admdvs": insured, "insuplc_name": regions.name(insured), "filing_required": required}
    if filing is not None:
        block.update(filing_type=filing.filing_type, filing_admdvs=filing.admdvs,
                     filing_begndate=filing.begndate.isoformat(),
                     filing_enddate=filing.enddate and filing.enddate.isoformat())
    temporary = filing.filing_type == "temporary" if filing is not None else where == "in_province"
    if unfiled:  # a manual claim
        block.update(ratio_effect="not_given", note=(
            "claimed manually without a filing (零星报销): paid under the insured place's rules; whether unfiled "
            "care is paid at a reduced ratio the seeds do not say"))
    elif deemed == "unreferred":
        block.update(deemed_filed=deemed, ratio_effect="category", note=(
            "non-emergency care without a referral is deemed filed and paid under the insured place's rules for "
            "that category (seed 003: 非急诊且未转诊就医人员……视同已备案。按非急诊且未转诊就医人员待遇报销)"))
    elif deemed == "emergency":
        block.update(deemed_filed=deemed, ratio_effect="not_given", note=(
            "emergency care the hospital marked (急诊标识) is deemed filed (seed 003: 异地急诊抢救人员视同已备案); "
            "the seeds give it no ratio of its own: the insured place's ratios for the care apply"))
    elif not temporary:
        block.update(ratio_effect="normal", note="a filed long-term stay or referral is paid at the insured place's "
                                                 "normal ratios (seed 004: 不降低报销比例)")
    else:
        block.update(ratio_effect="not_given", note=(
            "a self-referred temporary trip (临时外出) is paid at a reduced ratio (seed 004: 按照参保地政策要降低报销比例), "
            "which the policy data does not give: the normal ratios applied"))
    return {k: v for k, v in block.items() if v is not None}  # absent, not null: as its Avro twin reads back


def summary(block: dict | None, insured: str, treated: str) -> str:
    """One sentence of what was decided, for a refusal that still owes the decision."""
    if block is None:
        return f"local care in {regions.name(treated)} ({treated}), the insured prefecture"
    how = (f"filed ({block['filing_type']}, {block['filing_admdvs']})" if "filing_type" in block
           else f"deemed filed ({block['deemed_filed']})" if "deemed_filed" in block
           else "no filing needed")
    return (f"{block['scope'].replace('_', '-')} care in {block['mdtrtarea_name']} ({treated}) for a person insured in "
            f"{block['insuplc_name']} ({insured}), {how}, ratio effect {block['ratio_effect']}: {block['note']}")


def check_outpatient_disease(policy: Policy, dise_codg: str | None, registered: set[str], day: dt.date,
                             block: dict) -> None:
    """Outpatient chronic/special care in another province is settled directly only for a disease the
    insured place lists (`cross_province_outpatient_diseases`) and the person has registered (2503) on
    the day (seed 000 三、3: 办理了……门诊慢特病待遇备案登记后，先办理跨省异地就医备案), with a filing: being
    deemed filed does not cover it (seed 003 五、(三): 需在参保地完成门诊慢特病资格认定并完成备案); otherwise
    SettlementRefused."""
    listed = sorted(policy.remote_care.cross_province_outpatient_diseases)
    names = ", ".join(f"{c} {policy.disease(c).name}" for c in listed)
    remedy = "Remedy: pay the bill in full and claim manual reimbursement (零星报销) at the insured place"
    disease = policy.disease(dise_codg) if dise_codg else None
    if disease is None or disease.code not in listed:
        what = f"{disease.code} {disease.name}" if disease else f"dise_codg {dise_codg or '(absent)'}"
        raise SettlementRefused("NOT_CROSS_PROVINCE_DISEASE", f"{what}: not a disease {policy.id} settles directly in "
                                f"another province; it settles {names}. {remedy}")
    if disease.code not in registered:
        raise SettlementRefused("NOT_REGISTERED", f"{disease.code} {disease.name} is not registered (2503) on "
                                f"{day.isoformat()}: settling it in another province needs the registration. {remedy}")
    if "deemed_filed" in block:
        raise SettlementRefused("NOT_FILED", f"{disease.code} {disease.name}: outpatient chronic care in another province "
                                "needs a remote-care filing; being deemed filed (for other care) does not cover it "
                                f"(seed 003: 需在参保地完成门诊慢特病资格认定并完成备案). {remedy}, or file and settle again")
