"""Remote care (异地就医), derived by hand from seed 004 (the Lincang notice, Yunnan's provincial rule):
in-province care elsewhere needs no filing (省内异地就医免备案); cross-province care is settled directly
only with a filing in force, which names a prefecture (a province for 北京、天津、上海、重庆、海南、西藏、
新疆兵团) and any institution there; a temporary filing is valid 3 months; without one the person pays
and claims manual reimbursement. The money follows the insured place's policy either way.
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


def visit(code: str, day: str = "2025-02-01", msgid: str | None = None) -> dict:
    # a general outpatient visit of 500 at a level-1 hospital: 400 甲 + 100 乙 (the Kunming worked example)
    return settlement([line("400"), line("100", "02")], fixmedins_code=code, day=day, msgid=msgid)


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
        # 就医地目录 not built yet: the insured place's rules and catalogue, level 1 (Taiyuan's hospital): 285 as at home
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
