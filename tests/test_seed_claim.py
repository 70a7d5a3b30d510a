"""Manual reimbursement (零星报销), derived by hand from the seeds: care that was not settled directly
(seed 002 七、1: 未能在定点医疗机构联网直接结算的) is claimed with its materials (七、2), settled under
the insured place's rules on the treatment place's catalogue, paid to the claimant, and done within
15 working days promised and 20 legal (seed 000 一、6/7), counted on China's calendar."""
from decimal import Decimal

import pytest

from connectors.files import settle_lines
from processors.clearing import Clearing
from processors.ledger import Ledger
from schemas.serde import encode
from tests.support import BOOK, PSN, hospitals, line, person, run, setlinfo, settlement

TAIYUAN_HOSPITAL, TAIYUAN = "H14010500009", "140105"
OUTPATIENT = ["invoice", "fee_list", "bank_account"]
INPATIENT = ["invoice", "illness_certificate", "discharge_summary", "fee_list", "bank_account"]


def claim(lines: list[dict], *, day: str = "2025-09-20", claimed: str = "2025-09-26", materials=OUTPATIENT,
          med_type: str = "11", msgid: str = "MC-1", psn_no: str = PSN, hosp_lv: int = 1, **data) -> dict:
    feedetail = [dict(item, feedetl_sn=str(i)) for i, item in enumerate(lines, start=1)]
    return {"infno": "manual_claim", "msgid": msgid, "fixmedins_code": TAIYUAN_HOSPITAL, "mdtrtarea_admvs": TAIYUAN,
            "input": {"data": {"psn_no": psn_no, "mdtrt_id": f"MD-{msgid}", "med_type": med_type,
                               "setl_time": f"{day} 10:00:00", **data},
                      "feedetail": feedetail,
                      "claim": {"claim_date": claimed, "hosp_lv": hosp_lv, "materials": list(materials)}}}


BILL = [line("400"), line("100", "02", selfpay_prop=Decimal("0.05"))]  # the Kunming worked example, 500


def test_unfiled_cross_province_care_refused_at_the_till_is_paid_by_claim_under_the_insured_places_rules():
    at_till = settlement(BILL, fixmedins_code=TAIYUAN_HOSPITAL, day="2025-09-20")
    taiyuan = {"infno": "institution", "msgid": "I-TY", "input": {"fixmedins_code": TAIYUAN_HOSPITAL, "fixmedins_type": "1",
                                                                  "hosp_lv": 1, "admdvs": TAIYUAN}}
    refused, claimed = run(hospitals() + [person(balc="300"), taiyuan, at_till, claim(BILL)])[-2:]
    assert refused["err_msg"].startswith("NOT_FILED") and "claim manual reimbursement (零星报销)" in refused["err_msg"]
    info = setlinfo(claimed)
    # Yunnan 2025, level 1: deductible 20, 先行自付 5% of the 乙 line (Taiyuan's share), 60%: (500-20-5)×60% = 285
    money = ("medfee_sumamt", "preselfpay_amt", "act_pay_dedc", "hifp_pay", "acct_pay", "psn_cash_pay", "balc")
    assert [info[k] for k in money] == [Decimal(v) for v in ("500.00", "5.00", "20.00", "285.00", "0.00", "215.00", "300.00")]
    remote = claimed["output"]["remote"]
    assert (remote["scope"], remote["filing_required"], remote["ratio_effect"]) == ("cross_province", True, "not_given")
    assert "filing_type" not in remote and "零星报销" in remote["note"]


def test_due_dates_count_chinas_working_days_across_the_national_day_holiday():
    # claimed Fri 2025-09-26; 2025: Oct 1-8 off, Sun Sep 28 and Sat Oct 11 worked. Working days after the
    # claim: Sep 28, 29, 30, Oct 9, 10, 11, 13-17, 20-23 (15th: Oct 23), 24, 27-30 (20th: Oct 30)
    out = run(hospitals() + [person(), claim(BILL)])[-1]["output"]["claim"]
    assert out == {"claim_date": "2025-09-26", "promised_by": "2025-10-23", "due_by": "2025-10-30"}


def test_beyond_the_calendars_years_only_weekends_are_days_off_and_the_result_says_so():
    # Mon 2026-12-21 + 15 working days: Dec 22-25, 28-31 (8), then 2027 without holiday data: Jan 1, 4-8 (14), 11 (15)
    out = run(hospitals() + [person(), claim(BILL, day="2026-12-20", claimed="2026-12-21")])[-1]["output"]["claim"]
    assert (out["promised_by"], out["due_by"]) == ("2027-01-11", "2027-01-18")
    assert "no data for 2027" in out["calendar_note"]


@pytest.mark.parametrize("med_type, materials, extra, missing", [
    ("21", OUTPATIENT, {}, "discharge_summary, illness_certificate"),  # inpatient: 出院小结, 病情证明 too
    ("11", ["invoice", "bank_account"], {}, "fee_list"),
    ("11", OUTPATIENT, {"emergency_flag": "1"}, "emergency_certificate"),  # 急诊需急诊诊断证明
])
def test_a_claim_without_its_materials_is_refused_naming_what_is_missing(med_type, materials, extra, missing):
    result = run(hospitals() + [person(), claim([line("800")], med_type=med_type, materials=materials, **extra)])[-1]
    assert result["err_msg"].startswith("MATERIALS_MISSING") and result["err_msg"].endswith(f"missing: {missing} (seed 002 七、2)")


def test_an_inpatient_claim_with_its_materials_counts_toward_the_years_totals():
    stay = claim([line("10000")], med_type="21", materials=INPATIENT, day="2025-03-02", claimed="2025-03-20", msgid="MC-IP")
    later = settlement([line("10000")], med_type="21", infno="2304", day="2025-06-01", level=1)
    first, second = run(hospitals() + [person(), stay, later])[-2:]
    # the first stay of the year pays the level-1 deductible; the claim counts as that stay, so the
    # next admission gets the second-admission deductible: the two differ
    assert setlinfo(first)["act_pay_dedc"] > setlinfo(second)["act_pay_dedc"] > 0


def test_a_claim_is_not_cleared_with_the_institution_cannot_be_reversed_by_it_and_answers_a_resend_alike():
    clearing = Clearing()
    events = hospitals() + [person(), claim(BILL)]
    results = [item.result for item in settle_lines([encode(e) for e in events], Ledger(BOOK), clearing)]
    assert results[-1]["infcode"] == 0 and clearing.seen == set()
    undo = {"infno": "2208", "msgid": "U-1", "fixmedins_code": TAIYUAN_HOSPITAL,
            "input": {"data": {"psn_no": PSN, "omsgid": "MC-1"}}}
    again, reversed_ = run(events + [claim(BILL), undo])[-2:]
    assert again == results[-1]
    assert reversed_["err_msg"].startswith("WRONG_INFNO")


def test_a_claim_before_the_care_is_invalid_and_a_shanxi_claim_has_no_money_rules():
    early = run([claim(BILL, claimed="2025-09-19")])[-1]
    assert "claim_date is before the care" in early["err_msg"]
    shanxi = person("140105198004010033", insuplc_admdvs="140100")
    result = run(hospitals() + [shanxi, claim(BILL, psn_no="140105198004010033")])[-1]
    assert result["err_msg"].startswith("NO_MONEY_POLICY: policy data for shanxi (shanxi-2025-03) has no manual-claim rules")
