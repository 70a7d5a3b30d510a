"""Remote care (异地就医), derived by hand from seed 004 (the Lincang notice, Yunnan's provincial rule):
in-province care elsewhere needs no filing (省内异地就医免备案); cross-province care is settled directly
only with a filing in force, which names a prefecture (a province for 北京、天津、上海、重庆、海南、西藏、
新疆兵团) and any institution there; a temporary filing is valid 3 months; without one the person pays
and claims manual reimbursement. The money follows the insured place's policy either way, the
catalogue's 先行自付 shares the treatment place's (就医地目录). Seed 003 (Shanxi): unreferred and
marked-emergency care is deemed filed; ten outpatient chronic diseases cross provinces; no money
parameters, so a Shanxi person's settlement gets the decision and no invented amounts.
"""
from decimal import Decimal

import pytest

from tests.support import PSN, hospitals, institution, line, person, run, setlinfo, settlement

TAIYUAN, GUJIAO, LINCANG, BEIJING_CHAOYANG, BEIJING_HAIDIAN = "140105", "140181", "530902", "110105", "110108"


def _hospital_in(admdvs: str, code: str) -> dict:
    ev = institution(code, 1)
    ev["input"]["admdvs"] = admdvs
    return ev


def filing(admdvs: str, kind: str = "temporary", begndate: str = "2025-01-10", enddate: str | None = None) -> dict:
    data = {"psn_no": PSN, "filing_type": kind, "admdvs": admdvs, "begndate": begndate}
    if enddate:
        data["enddate"] = enddate
    return {"infno": "remote_filing", "msgid": f"RF-{admdvs}-{kind}-{begndate}", "input": data}


def unfiling(admdvs: str, enddate: str) -> dict:
    return {"infno": "remote_filing_cancel", "msgid": f"RU-{admdvs}-{enddate}", "input": {"psn_no": PSN, "admdvs": admdvs, "enddate": enddate}}


def visit(code: str, day: str = "2025-02-01", msgid: str | None = None, selfpay_prop: str | None = "0.05") -> dict:
    # a general outpatient visit of 500 at a level-1 hospital: 400 甲 + 100 乙 (the Kunming worked example);
    # the 乙 line carries the treatment place's 先行自付 share, as the national platform answers it (2204)
    extra = {} if selfpay_prop is None else {"selfpay_prop": Decimal(selfpay_prop)}
    return settlement([line("400"), line("100", "02", **extra)], fixmedins_code=code, day=day, msgid=msgid)


SETUP = hospitals() + [person(), _hospital_in(TAIYUAN, "H14010500001"), _hospital_in(GUJIAO, "H14018100001"),
                       _hospital_in(LINCANG, "H53090200001"), _hospital_in(BEIJING_HAIDIAN, "H11010800001")]


def test_in_province_care_elsewhere_needs_no_filing_and_says_a_temporary_trip_would_be_reduced():
    local, lincang = run(SETUP + [visit("H53010100001", msgid="LOCAL"), visit("H53090200001", msgid="LINCANG")])[-2:]
    remote = lincang["output"]["remote"]
    assert (remote["scope"], remote["filing_required"], remote["ratio_effect"]) == ("in_province", False, "not_given")
    assert remote["mdtrtarea_name"] == "云南省临沧市临翔区" and remote["insuplc_name"] == "云南省昆明市"
    assert "remote" not in local["output"]
    # policy here: the same money as at home (500: 20 deductible, 5 先行自付, (500-20-5)×60% = 285 in 2025)
    money = ("medfee_sumamt", "act_pay_dedc", "preselfpay_amt", "hifp_pay", "acct_pay", "psn_cash_pay")
    assert [setlinfo(lincang)[k] for k in money] == [Decimal(v) for v in ("500", "20", "5", "285", "0", "215")]
    assert [setlinfo(local)[k] for k in money] == [setlinfo(lincang)[k] for k in money]


def test_cross_province_care_without_a_filing_is_refused_with_the_remedy():
    result = run(SETUP + [visit("H14010500001")])[-1]
    assert result["infcode"] == -1
    reason = result["err_msg"]
    assert reason.startswith("NOT_FILED: care in 山西省太原市小店区 (140105) is cross-province for a person insured in "
                             "云南省昆明市 (530100)")
    assert "filing (异地就医备案) for 山西省太原市 (140100) in force on 2025-02-01" in reason
    assert "pay the bill in full and claim manual reimbursement (零星报销) at the insured place" in reason


@pytest.mark.parametrize("day, filed", [("2025-01-10", True), ("2025-04-09", True), ("2025-04-10", False)])
def test_a_temporary_filing_holds_from_its_first_day_for_3_months(day, filed):
    results = run(SETUP + [filing(TAIYUAN), visit("H14010500001", day=day)])
    out = results[-2]["output"]
    assert (out["admdvs"], out["admdvs_name"], out["begndate"], out["enddate"]) == ("140100", "山西省太原市", "2025-01-10",
                                                                                   "2025-04-10")
    result = results[-1]
    if filed:
        remote = result["output"]["remote"]
        assert (remote["scope"], remote["filing_type"], remote["filing_admdvs"]) == ("cross_province", "temporary", "140100")
        assert remote["ratio_effect"] == "not_given" and "降低报销比例" in remote["note"]
        # the insured place's rules, level 1 (Taiyuan's hospital), Taiyuan's 先行自付 share 5%: 285 as at home
        assert (setlinfo(result)["hifp_pay"], setlinfo(result)["psn_cash_pay"]) == (Decimal("285.00"), Decimal("215.00"))
    else:
        assert result["err_msg"].startswith("NOT_FILED")


def test_a_filing_covers_every_institution_of_its_prefecture_and_a_long_term_one_keeps_the_normal_ratio():
    result = run(SETUP + [filing(TAIYUAN, "resettled_retiree", "2024-12-01"), visit("H14018100001")])[-1]
    remote = result["output"]["remote"]
    assert (remote["mdtrtarea_admvs"], remote["filing_admdvs"], remote["ratio_effect"]) == (GUJIAO, "140100", "normal")
    assert "filing_enddate" not in remote  # long-term: until cancelled


def test_a_municipality_is_filed_as_a_whole():
    out = run(SETUP + [filing(BEIJING_CHAOYANG, "posted_worker", "2024-12-01"), visit("H11010800001")])[-2:]
    assert out[0]["output"]["admdvs"] == "110000" and out[1]["output"]["remote"]["filing_admdvs"] == "110000"


def test_a_cancelled_filing_ends_on_its_end_date():
    results = run(SETUP + [filing(TAIYUAN, "long_term_resident", "2024-12-01"), unfiling(TAIYUAN, "2025-02-01"),
                           visit("H14010500001", day="2025-01-31"), visit("H14010500001", day="2025-02-01")])
    assert results[-3]["output"]["enddate"] == "2025-02-01"
    assert results[-2]["infcode"] == 0 and results[-1]["err_msg"].startswith("NOT_FILED")


def test_filings_are_refused_where_none_is_needed_or_the_place_is_unknown():
    in_province, unknown = run(SETUP + [filing(LINCANG), filing("149999")])[-2:]
    assert in_province["err_msg"].startswith("NOT_NEEDED: 云南省临沧市 is in the insured province")
    assert unknown["err_msg"].startswith("UNKNOWN_REGION: admdvs 149999 is not a GB/T 2260 region code")


def test_the_same_filing_again_changes_nothing_and_a_wrong_one_is_invalid():
    first, again = run(SETUP + [filing(TAIYUAN), filing(TAIYUAN)])[-2:]
    assert first == again
    bad = filing(TAIYUAN)
    del bad["input"]["filing_type"]
    assert run([bad])[-1]["err_msg"].startswith("BAD_EVENT") and "needs input.filing_type" in run([bad])[-1]["err_msg"]


# -- outpatient chronic/special diseases across provinces: seed 004 lists five (seed 000 announces five, lists four)


def _chronic_visit(code: str, day: str = "2025-02-01") -> dict:
    return settlement([line("1000")], med_type="14", fixmedins_code="H14010500001", day=day, dise_codg=code)


@pytest.mark.parametrize("disease, registered, outcome", [
    ("MXB16", True, "ok"),  # 糖尿病: on the list and registered
    ("TSB02", True, "ok"),  # 慢性肾功能衰竭 (透析): the fifth disease, from seed 004
    ("MXB16", False, "NOT_REGISTERED"),  # listed but not registered: no general-outpatient fallback across provinces
    ("MXB01", True, "NOT_CROSS_PROVINCE_DISEASE"),  # 冠心病: a Yunnan chronic disease, not settled across provinces
])
def test_outpatient_chronic_care_in_another_province_only_for_listed_registered_diseases(disease, registered, outcome):
    from tests.support import filing as disease_filing
    events = SETUP + [filing(TAIYUAN, "long_term_resident", "2024-12-01")]
    if registered:
        events.append(disease_filing(disease))
    result = run(events + [_chronic_visit(disease)])[-1]
    if outcome == "ok":
        assert result["infcode"] == 0, result["err_msg"]
        assert result["output"]["remote"]["scope"] == "cross_province"
        assert setlinfo(result)["benefit"] in ("chronic_outpatient", "special_outpatient")
    else:
        assert result["err_msg"].startswith(outcome), result["err_msg"]
        assert "claim manual reimbursement (零星报销)" in result["err_msg"]


def test_the_same_chronic_visit_in_the_insured_province_needs_neither_list_nor_filing():
    from tests.support import filing as disease_filing
    visit_lincang = settlement([line("1000")], med_type="14", fixmedins_code="H53090200001", day="2025-02-01",
                               dise_codg="MXB01")
    result = run(SETUP + [disease_filing("MXB01"), visit_lincang])[-1]
    assert result["infcode"] == 0 and result["output"]["remote"]["scope"] == "in_province"


# -- 就医地目录、参保地政策: the treatment place's catalogue, the insured place's money


@pytest.mark.parametrize("prop, preselfpay, hifp", [("0.05", "5.00", "285.00"), ("0.10", "10.00", "282.00"),
                                                     ("0", "0.00", "288.00")])
def test_across_provinces_the_treatment_places_catalogue_gives_the_preselfpay_share(prop, preselfpay, hifp):
    # yibao holds no Shanxi catalogue: the 乙 line's selfpay_prop (Taiyuan's answer) decides its 先行自付;
    # Yunnan's deductible (20, level 1) and ratio (60%, 2025) decide the money: (500-20-先行自付)×60%
    result = run(SETUP + [filing(TAIYUAN), visit("H14010500001", selfpay_prop=prop)])[-1]
    info = setlinfo(result)
    assert (info["preselfpay_amt"], info["act_pay_dedc"], info["hifp_pay"]) == (Decimal(preselfpay), Decimal("20.00"), Decimal(hifp))
    assert info["psn_cash_pay"] == Decimal("500.00") - Decimal(hifp)
    assert any(s["key"] == "catalog.treatment_place_selfpay_prop" for s in info["setl_proc_info"]) == (prop != "0")


def test_without_the_treatment_places_share_a_class_b_line_is_refused_and_a_held_catalogue_decides():
    refused = run(SETUP + [filing(TAIYUAN), visit("H14010500001", selfpay_prop=None)])[-1]
    assert refused["err_msg"].startswith("NO_CATALOGUE: line 2 乙类药品: yibao holds no catalogue data for the "
                                         "treatment place (就医地目录); send the line's selfpay_prop")
    # in Yunnan yibao holds the catalogue (seed 002: 乙类药品先自付5%): a line's selfpay_prop does not override it
    lincang = run(SETUP + [visit("H53090200001", selfpay_prop="0.30")])[-1]
    assert (setlinfo(lincang)["preselfpay_amt"], setlinfo(lincang)["hifp_pay"]) == (Decimal("5.00"), Decimal("285.00"))


# -- Shanxi-insured people (seed 003): deemed filed, ten diseases, and no money parameters in the seeds

SHANXI_PSN = "140105198001010011"
KUNMING_HOSPITAL = "H53010100001"


def _shanxi(*events: dict) -> list[dict]:
    return run(SETUP + [person(SHANXI_PSN, insuplc_admdvs="140100")] + list(events))


def _shanxi_visit(code: str = KUNMING_HOSPITAL, **data) -> dict:
    return settlement([line("400"), line("100", "02")], fixmedins_code=code, day="2025-05-06", psn_no=SHANXI_PSN,
                      **data)


def test_a_shanxi_person_unfiled_in_yunnan_is_deemed_filed_where_a_yunnan_person_in_shanxi_is_refused():
    shanxi_in_kunming = _shanxi(_shanxi_visit())[-1]
    reason = shanxi_in_kunming["err_msg"]
    assert reason.startswith("NO_MONEY_POLICY: cross-province care in 云南省昆明市五华区 (530102) for a person insured in "
                             "山西省太原市 (140100), deemed filed (unreferred), ratio effect category: non-emergency care "
                             "without a referral is deemed filed")
    assert reason.endswith("Not settled: policy data for shanxi (14xxxx, shanxi-2025-03) has no deductible, ratio or cap "
                           "(the seeds give its remote-care rules only)")
    yunnan_in_taiyuan = run(SETUP + [visit("H14010500001", day="2025-05-06")])[-1]
    assert yunnan_in_taiyuan["err_msg"].startswith("NOT_FILED")


def test_emergency_care_the_hospital_marks_is_deemed_filed_as_emergency():
    reason = _shanxi(_shanxi_visit(emergency_flag="1"))[-1]["err_msg"]
    assert "deemed filed (emergency), ratio effect not_given: emergency care the hospital marked (急诊标识)" in reason
    # Yunnan deems no one filed: the mark does not settle a Yunnan person's unfiled care in Taiyuan
    marked = settlement([line("400")], fixmedins_code="H14010500001", day="2025-05-06", emergency_flag="1")
    assert run(SETUP + [marked])[-1]["err_msg"].startswith("NOT_FILED")


def test_a_filed_shanxi_person_and_care_at_home_get_the_decision_without_invented_money():
    filed = {"infno": "remote_filing", "msgid": "RF-SX", "input": {"psn_no": SHANXI_PSN, "filing_type": "long_term_resident",
                                                                    "admdvs": "530102", "begndate": "2025-04-01"}}
    taiyuan = dict(_hospital_in(TAIYUAN, "H14010500001"))
    results = _shanxi(filed, _shanxi_visit(), taiyuan, _shanxi_visit("H14010500001", msgid="SX-HOME"))
    assert results[-4]["output"]["admdvs"] == "530100"
    assert "for a person insured in 山西省太原市 (140100), filed (long_term_resident, 530100), ratio effect normal" \
        in results[-3]["err_msg"]
    assert results[-1]["err_msg"].startswith("NO_MONEY_POLICY: local care in 山西省太原市小店区 (140105), the insured prefecture. "
                                             "Not settled: policy data for shanxi")


def test_the_same_bill_under_two_insured_places_with_one_catalogue():
    # Kunming's bill (Yunnan's catalogue: 乙类药品先自付5%) for a Yunnan and a Shanxi person on the same day
    yunnan = run(SETUP + [settlement([line("400"), line("100", "02")], fixmedins_code=KUNMING_HOSPITAL, day="2025-05-06")])[-1]
    assert (setlinfo(yunnan)["preselfpay_amt"], setlinfo(yunnan)["hifp_pay"]) == (Decimal("5.00"), Decimal("285.00"))
    shanxi = _shanxi(_shanxi_visit())[-1]
    assert shanxi["infcode"] == -1 and shanxi["err_msg"].startswith("NO_MONEY_POLICY: cross-province care")
    assert "under the treatment place's catalogue: medfee_sumamt 500.00, fulamt_ownpay_amt 0.00, overlmt_selfpay 0.00, " \
           "preselfpay_amt 5.00, inscp_scp_amt 495.00" in shanxi["err_msg"]


@pytest.mark.parametrize("disease, filed, outcome", [
    ("冠心病", True, "NO_MONEY_POLICY"),  # one of Shanxi's ten (SX08), registered and filed: only the money is missing
    ("SX04", True, "NO_MONEY_POLICY"),  # 尿毒症透析 by its code
    ("冠心病", False, "NOT_FILED"),  # deemed filed for other care does not cover chronic outpatient care (五、(三))
    ("MXB16", True, "NOT_CROSS_PROVINCE_DISEASE"),  # a Yunnan code: not one of Shanxi's diseases
])
def test_shanxi_settles_its_ten_outpatient_chronic_diseases_across_provinces_only_registered_and_filed(disease, filed, outcome):
    from tests.support import filing as disease_filing
    events = [disease_filing("冠心病", SHANXI_PSN, "2025-04-01"), disease_filing("SX04", SHANXI_PSN, "2025-04-01")]
    if filed:
        events.append({"infno": "remote_filing", "msgid": "RF-SX", "input": {
            "psn_no": SHANXI_PSN, "filing_type": "long_term_resident", "admdvs": "530102", "begndate": "2025-04-01"}})
    results = _shanxi(*events, settlement([line("1000")], med_type="14", fixmedins_code=KUNMING_HOSPITAL, day="2025-05-06",
                                          psn_no=SHANXI_PSN, dise_codg=disease))
    assert results[-len(events) - 1]["output"]["opsp_dise_name"] == "冠心病"
    assert results[-1]["err_msg"].startswith(outcome), results[-1]["err_msg"]


def test_a_shanxi_account_is_not_credited_with_invented_rules():
    from tests.support import credit
    result = _shanxi(credit("2025-05", SHANXI_PSN, "8000"))[-1]
    assert result["err_msg"].startswith("NO_MONEY_POLICY: policy data for shanxi (shanxi-2025-03) has no personal-account rules")
