"""Pydantic v2 models of the events yibao accepts, with the national platform's field names (NHSA.md).

Settlement transactions keep the national envelope (`infno`, `msgid`, `fixmedins_code`, ...,
`input.data`, `input.feedetail[]`). Reference data the national platform keeps elsewhere (people,
institutions, year-to-date totals imported from elsewhere) arrives as yibao commands with a named
`infno`: `person`, `institution`, `accumulators`. Money is Decimal yuan with at most 2 decimals.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

Money = Annotated[Decimal, Field(ge=0, le=Decimal("9999999999.99"), decimal_places=2)]
Id = Annotated[str, Field(min_length=1, max_length=50)]
Admdvs = Annotated[str, Field(pattern=r"^\d{6}$")]
Flag = Literal["0", "1"]
Level = Literal[1, 2, 3]

SETTLE_INFNOS = ("2102", "2207", "2304")
EARLIEST_BIRTH = dt.date(1900, 1, 1)  # no one insured today was born earlier: an older date is a typing error
CANCEL_OF = {"2103": "2102", "2208": "2207", "2305": "2304"}
ITEM_TYPES = {
    "drug": "drug", "service": "service", "consumable": "consumable",
    # national list_type codes: 101 西药中成药, 102 中药饮片, 103 医疗机构制剂, 104 民族药,
    # 201 医疗服务项目, 301 医用耗材
    "101": "drug", "102": "drug", "103": "drug", "104": "drug", "201": "service", "301": "consumable",
}


# What a fee line is for (`fee_ctgy`): medical care (the default) or one of the purposes the personal
# account may not pay (policy data: processors/policies/<region>/account.yaml).
FeeCategory = Literal["medical", "public_health", "fitness", "wellness", "checkup"]


# What the user (使用人) of a family binding is to the authorizer (授权人) whose account pays for them.
Relation = Literal["spouse", "parent", "child", "sibling", "grandparent", "maternal_grandparent", "grandchild",
                   "maternal_grandchild"]

# The insurances whose individual contribution (个人缴费) a personal account may pay (acct_contrib): 390 resident
# basic insurance, 330 large-amount subsidy (insutype codes); ltc and commercial have no national code.
ContributionInsutype = Literal["390", "330", "ltc", "commercial"]


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class FeeDetail(Wire):
    feedetl_sn: Id
    det_item_fee_sumamt: Money
    chrgitm_lv: Literal["01", "02", "03"]
    list_type: str
    cnt: Annotated[Decimal, Field(gt=0, le=10**7)] | None = None
    pric_uplmt_amt: Money | None = None
    nego_drug_flag: Flag = "0"
    matn_fee_flag: Flag | None = None
    svc_feedetl_sn: Id | None = None
    med_list_codg: str | None = None
    fee_ctgy: FeeCategory = "medical"
    # the treatment place's catalogue answer for the line (2204: selfpay_prop): its 先行自付 share,
    # used where yibao holds no catalogue data for the treatment place (就医地目录)
    selfpay_prop: Annotated[Decimal, Field(ge=0, le=1, decimal_places=4)] | None = None

    @field_validator("list_type")
    @classmethod
    def _item_type(cls, v: str) -> str:
        try:
            return ITEM_TYPES[v]
        except KeyError:
            raise ValueError(
                "must be drug, service or consumable (or the national codes 101-104, 201, 301)"
            ) from None

    @model_validator(mode="after")
    def _negotiated_is_a_drug(self) -> "FeeDetail":
        if self.nego_drug_flag == "1" and self.list_type != "drug":
            raise ValueError("nego_drug_flag=1 is only for drugs")
        if self.svc_feedetl_sn is not None and self.list_type != "consumable":
            raise ValueError("svc_feedetl_sn links a consumable to its service; this line is not one")
        return self


class SettlementData(Wire):
    psn_no: Id
    mdtrt_id: Id
    med_type: Annotated[str, Field(min_length=2, max_length=6)]
    setl_time: dt.datetime
    insutype: Literal["310", "510"] = "310"
    acct_used_flag: Flag | None = None
    medfee_sumamt: Money | None = None
    dise_codg: str | None = None
    mid_setl_flag: Flag = "0"
    # pharmacy with an electronic prescription (seed 001, question 10)
    rx_fixmedins_code: Id | None = None
    rx_hosp_lv: Level | None = None
    # maternity and family planning
    matn_type: str | None = None
    birctrl_type: str | None = None
    geso_mons: Annotated[int, Field(ge=0, le=11)] | None = None
    geso_val: Annotated[int, Field(ge=0, le=45)] | None = None  # gestation in weeks (national discharge form)
    fetus_cnt: Annotated[int, Field(ge=1, le=9)] | None = None
    fetts: Annotated[int, Field(ge=1, le=9)] | None = None
    spus_unemp_flag: Flag = "0"
    art_birth_flag: Flag = "0"
    emergency_flag: Flag = "0"  # 1: the treating hospital marks the care as emergency (急诊标识, seed 003)

    @field_validator("insutype", mode="before")
    @classmethod
    def _supported_insutype(cls, v: object) -> object:
        if v == "390":
            raise ValueError("resident insurance (390) is not yet supported: only employee insurance 310")
        return v


class SettlementInput(Wire):
    data: SettlementData
    feedetail: list[FeeDetail] = Field(min_length=1, max_length=10000)

    @model_validator(mode="after")
    def _consistent(self) -> "SettlementInput":
        sns = [f.feedetl_sn for f in self.feedetail]
        if len(sns) != len(set(sns)):
            raise ValueError("feedetl_sn must be unique within a settlement")
        total = sum((f.det_item_fee_sumamt for f in self.feedetail), Decimal("0"))
        if self.data.medfee_sumamt is not None and self.data.medfee_sumamt != total:
            raise ValueError(
                f"data.medfee_sumamt {self.data.medfee_sumamt} differs from the sum of feedetail {total}"
            )
        known = set(sns)
        for f in self.feedetail:
            if f.svc_feedetl_sn is not None and f.svc_feedetl_sn not in known:
                raise ValueError(f"feedetail {f.feedetl_sn}: svc_feedetl_sn {f.svc_feedetl_sn} is not a line here")
        return self


class Envelope(Wire):
    msgid: Annotated[str, Field(min_length=1, max_length=40)]
    fixmedins_code: Id | None = None
    mdtrtarea_admvs: Admdvs | None = None
    insuplc_admdvs: Admdvs | None = None
    inf_time: str | None = None
    infver: str | None = None
    opter_type: str | None = None
    opter: str | None = None
    opter_name: str | None = None
    fixmedins_name: str | None = None
    recer_sys_code: str | None = None
    sign_no: str | None = None
    signtype: str | None = None


class SettlementRequest(Envelope):
    infno: Literal["2102", "2207", "2304"]
    fixmedins_code: Id
    input: SettlementInput


class CancelData(Wire):
    psn_no: Id
    setl_id: Id | None = None
    omsgid: Id | None = None
    oinfno: str | None = None
    mdtrt_id: Id | None = None

    @model_validator(mode="after")
    def _names_the_settlement(self) -> "CancelData":
        if self.setl_id is None and self.omsgid is None:
            raise ValueError("name the settlement to cancel: setl_id or omsgid")
        return self


class CancelInput(Wire):
    data: CancelData


class CancelRequest(Envelope):
    """2103/2208/2305 settlement cancel, and 2601 reversal (冲正: `omsgid` + `oinfno`)."""

    infno: Literal["2103", "2208", "2305", "2601"]
    input: CancelInput

    @model_validator(mode="after")
    def _reversal_fields(self) -> "CancelRequest":
        if self.infno == "2601" and (self.input.data.omsgid is None or self.input.data.oinfno is None):
            raise ValueError("2601 reversal needs input.data.omsgid and input.data.oinfno")
        return self


class PersonData(Wire):
    psn_no: Id
    psn_name: str | None = None
    certno: str | None = None
    gend: Literal["1", "2"] | None = None
    brdy: dt.date
    psn_type: str
    insutype: str = "310"
    insuplc_admdvs: Admdvs
    balc: Money | None = None
    maf_lv: Literal["deep", "relative"] | None = None
    maf_base_inc: Money | None = None

    @field_validator("brdy")
    @classmethod
    def _plausible_birth(cls, v: dt.date) -> dt.date:
        if v < EARLIEST_BIRTH:
            raise ValueError(f"a birth date before {EARLIEST_BIRTH} is not plausible")
        return v

    @field_validator("psn_type")
    @classmethod
    def _employee(cls, v: str) -> str:
        if v not in ("1101", "1201"):
            raise ValueError(
                f"psn_type {v} is not supported: only 1101 (在职 active) and 1201 (退休 retired) employees"
            )
        return v

    @field_validator("insutype")
    @classmethod
    def _employee_insurance(cls, v: str) -> str:
        if v == "390":
            raise ValueError("resident insurance (390) is not yet supported: only employee insurance 310")
        if v != "310":
            raise ValueError(f"insutype {v} is not supported: only employee insurance 310")
        return v

    @model_validator(mode="after")
    def _assistance(self) -> "PersonData":
        if (self.maf_lv is None) != (self.maf_base_inc is None):
            raise ValueError("maf_lv and maf_base_inc go together (assistance level and its base income)")
        return self


class PersonEvent(Envelope):
    infno: Literal["person"]
    input: PersonData


class InstitutionData(Wire):
    fixmedins_code: Id
    fixmedins_name: str | None = None
    fixmedins_type: Literal["1", "2"]  # 1 定点医疗机构, 2 定点零售药店
    hosp_lv: Level | None = None
    admdvs: Admdvs
    day_surgery: bool = False
    matn: bool = False
    outpatient_pooling: bool = False

    @model_validator(mode="after")
    def _level(self) -> "InstitutionData":
        if self.fixmedins_type == "1" and self.hosp_lv is None:
            raise ValueError("a medical institution (fixmedins_type 1) needs hosp_lv 1, 2 or 3")
        return self


class InstitutionEvent(Envelope):
    infno: Literal["institution"]
    input: InstitutionData


class DiseaseFilingData(Wire):
    psn_no: Id
    opsp_dise_code: Annotated[str, Field(min_length=1, max_length=200)]
    begndate: dt.date | None = None
    enddate: dt.date | None = None


class DiseaseFilingEvent(Envelope):
    """2503 chronic/special disease filing; 2504 its cancel."""

    infno: Literal["2503", "2504"]
    input: DiseaseFilingData

    @model_validator(mode="after")
    def _dates(self) -> "DiseaseFilingEvent":
        d = self.input
        if self.infno == "2503" and d.begndate is None:
            raise ValueError("2503 filing needs input.begndate")
        if d.begndate and d.enddate and d.enddate < d.begndate:
            raise ValueError("input.enddate is before input.begndate")
        return self


class AccumulatorData(Wire):
    """Year-to-date totals a person built up elsewhere; added to what yibao holds for that year."""

    psn_no: Id
    year: Annotated[int, Field(ge=2000, le=2100)]
    op_pool_paid: Money = Decimal("0")
    ip_pool_paid: Money = Decimal("0")
    chronic_pool_paid: Money = Decimal("0")
    hifob_paid: Money = Decimal("0")
    adm_cnt: Annotated[int, Field(ge=0, le=366)] = 0
    chronic_dedc_paid: Money = Decimal("0")
    special_dedc_paid: Money = Decimal("0")
    maf_dedc_paid: Money = Decimal("0")
    maf_paid: Money = Decimal("0")
    art_claimed: bool = False


class AccumulatorEvent(Envelope):
    infno: Literal["accumulators"]
    input: AccumulatorData


FilingType = Literal["resettled_retiree", "long_term_resident", "posted_worker", "referral", "temporary"]


class RemoteFilingData(Wire):
    """A remote-care filing (异地就医备案): `psn_no` may be settled directly in `admdvs` (a prefecture,
    or a province where filings name the province) from `begndate`; `enddate` (exclusive) ends it.
    remote_filing_cancel ends the filing in force for `admdvs` from `enddate`."""

    psn_no: Id
    filing_type: FilingType | None = None
    admdvs: Admdvs
    begndate: dt.date | None = None
    enddate: dt.date | None = None


class RemoteFilingEvent(Envelope):
    """remote_filing: a filing (needs filing_type and begndate); remote_filing_cancel: end it (needs enddate).
    The national platform's infno for remote-care filing is unconfirmed (NHSA.md): these are yibao's."""

    infno: Literal["remote_filing", "remote_filing_cancel"]
    input: RemoteFilingData

    @model_validator(mode="after")
    def _fields(self) -> "RemoteFilingEvent":
        d = self.input
        if self.infno == "remote_filing" and (d.filing_type is None or d.begndate is None):
            raise ValueError("remote_filing needs input.filing_type and input.begndate")
        if self.infno == "remote_filing_cancel" and d.enddate is None:
            raise ValueError("remote_filing_cancel needs input.enddate")
        if d.begndate and d.enddate and d.enddate <= d.begndate:
            raise ValueError("input.enddate must be after input.begndate")
        return self


class AccountCreditData(Wire):
    """The monthly credit (划入) to a person's account, for `month` (yyyy-MM). An active member's
    credit is a share of `contrib_base`, the month's contribution base (缴费基数), taken as sent: the
    seeds clamp it to 60%..300% of the provincial average wage but give no figure for that wage."""

    psn_no: Id
    month: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
    contrib_base: Money | None = None


class AccountCreditEvent(Envelope):
    infno: Literal["acct_credit"]
    input: AccountCreditData


class AccountBindingData(Wire):
    """Family mutual aid (个人账户家庭共济): `auth_psn_no` (授权人) lets `psn_no` (使用人) draw on their account,
    from `begndate`; an unbind ends it from `enddate` (the binding is not in force on that day)."""

    psn_no: Id
    auth_psn_no: Id
    relation: Relation | None = None
    begndate: dt.date | None = None
    enddate: dt.date | None = None


class AccountBindingEvent(Envelope):
    """acct_bind: bind (needs relation and begndate); acct_unbind: end a binding (needs enddate)."""

    infno: Literal["acct_bind", "acct_unbind"]
    input: AccountBindingData

    @model_validator(mode="after")
    def _fields(self) -> "AccountBindingEvent":
        d = self.input
        if self.infno == "acct_bind" and (d.relation is None or d.begndate is None):
            raise ValueError("acct_bind needs input.relation and input.begndate")
        if self.infno == "acct_unbind" and d.enddate is None:
            raise ValueError("acct_unbind needs input.enddate")
        if d.psn_no == d.auth_psn_no:
            raise ValueError("a person cannot bind their own account: auth_psn_no equals psn_no")
        return self


class AccountContributionData(Wire):
    """acct_contrib: `psn_no`'s account pays the individual contribution (个人缴费) `cntr_amt` of
    `cntr_psn_no` (a relative: `relation` is what they are to the account holder; the holder themself
    when absent) to the insurance `insutype` for the year `year`, paid on `pay_date`."""

    psn_no: Id
    cntr_psn_no: Id | None = None
    relation: Relation | None = None
    insutype: ContributionInsutype
    year: Annotated[int, Field(ge=1990, le=2100)]
    cntr_amt: Annotated[Decimal, Field(gt=0, le=Decimal("9999999999.99"), decimal_places=2)]
    pay_date: dt.date

    @model_validator(mode="after")
    def _whose(self) -> "AccountContributionData":
        other = self.cntr_psn_no is not None and self.cntr_psn_no != self.psn_no
        if other and self.relation is None:
            raise ValueError("a relative's contribution needs input.relation (what cntr_psn_no is to psn_no)")
        if not other and self.relation is not None:
            raise ValueError("input.relation is for a relative's contribution: give cntr_psn_no too")
        return self


class AccountContributionEvent(Envelope):
    infno: Literal["acct_contrib"]
    input: AccountContributionData


class AccountQueryData(Wire):
    psn_no: Id


class AccountQueryEvent(Envelope):
    """acct_query: the person's account as `yibao account` shows it (balance, bindings, movements,
    year-to-date totals), answered on settle.results; it changes nothing and is not remembered."""

    infno: Literal["acct_query"]
    input: AccountQueryData


Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
SignedMoney = Annotated[Decimal, Field(ge=Decimal("-9999999999.99"), le=Decimal("9999999999.99"), decimal_places=2)]


class ClearingCloseData(Wire):
    setlym: Period


class ClearingCloseEvent(Envelope):
    """clearing_close (yibao's infno): close the month `setlym`; each institution's statement for it
    follows on clearing.statements. Closing a closed month again changes nothing."""

    infno: Literal["clearing_close"]
    input: ClearingCloseData


class ReconcileData(Wire):
    """3201 (对账): the institution's totals of its settlements dated stmt_begndate..stmt_enddate
    (inclusive; cancels negative, the count net of cancels), optionally with their `setl_ids` (the
    detail 3202 would send) to learn which are missing on either side. `insutype`, `clr_type` and
    `setl_optins` are the national fields: accepted, not used to narrow (every settlement counts)."""

    stmt_begndate: dt.date
    stmt_enddate: dt.date
    medfee_sumamt: SignedMoney
    fund_pay_sumamt: SignedMoney
    acct_pay: SignedMoney
    fixmedins_setl_cnt: Annotated[int, Field(ge=-10**9, le=10**9)]
    insutype: str | None = None
    clr_type: str | None = None
    setl_optins: str | None = None
    setl_ids: Annotated[list[Id], Field(max_length=100_000)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "ReconcileData":
        if self.stmt_enddate < self.stmt_begndate:
            raise ValueError("stmt_enddate must not be before stmt_begndate")
        return self


class ReconcileEvent(Envelope):
    infno: Literal["3201"]
    fixmedins_code: Id
    input: ReconcileData


CLEARING_EVENTS = (ClearingCloseEvent, ReconcileEvent)

Material = Literal["invoice", "fee_list", "illness_certificate", "discharge_summary", "bank_account",
                   "emergency_certificate", "accident_proof"]


class ClaimData(Wire):
    """What a manual claim (零星报销) adds to the bill: when it was made, the treating institution's
    level, and the materials handed in (seed 002 七、2; `accident_flag` 1: an injury in an accident,
    which needs `accident_proof` — the police or court finding, or the claimant's written promise)."""

    claim_date: dt.date
    hosp_lv: Level
    materials: Annotated[list[Material], Field(max_length=16)] = []
    accident_flag: Flag = "0"


class ManualClaimInput(SettlementInput):
    claim: ClaimData


class ManualClaimEvent(Envelope):
    """manual_claim (yibao's infno): care paid in full at an institution, claimed at the insured place
    (cross-province without a filing, an outage, ...): settled under the insured place's rules with
    the treatment place's catalogue, paid to the claimant (the account is not debited), with due dates.
    The envelope names the treating institution (`fixmedins_code`) and place (`mdtrtarea_admvs`)."""

    infno: Literal["manual_claim"]
    fixmedins_code: Id
    mdtrtarea_admvs: Admdvs
    input: ManualClaimInput

    @model_validator(mode="after")
    def _after_the_care(self) -> "ManualClaimEvent":
        if self.input.claim.claim_date < self.input.data.setl_time.date():
            raise ValueError("input.claim.claim_date is before the care (input.data.setl_time)")
        return self

Event = Annotated[
    Union[SettlementRequest, CancelRequest, PersonEvent, InstitutionEvent, DiseaseFilingEvent, AccumulatorEvent,
          AccountCreditEvent, AccountBindingEvent, AccountContributionEvent, AccountQueryEvent, RemoteFilingEvent,
          ClearingCloseEvent, ReconcileEvent, ManualClaimEvent],
    Field(discriminator="infno"),
]
EVENT = TypeAdapter(Event)


def psn_no_of(event) -> str | None:
    """The person an event is about; None for reference data about no one (an institution) and for
    clearing (a month's close, an institution's reconciliation)."""
    if isinstance(event, (InstitutionEvent, *CLEARING_EVENTS)):
        return None
    return getattr(event.input, "data", event.input).psn_no


INFNOS = sorted(
    {
        v
        for m in (SettlementRequest, CancelRequest, PersonEvent, InstitutionEvent, DiseaseFilingEvent, AccumulatorEvent,
                  AccountCreditEvent, AccountBindingEvent, AccountContributionEvent, AccountQueryEvent,
                  RemoteFilingEvent, ClearingCloseEvent, ReconcileEvent, ManualClaimEvent)
        for v in m.model_fields["infno"].annotation.__args__
    }
)
