"""General outpatient, 先行自付 and pharmacy: expectations derived by hand from the seeds.

Seeds: 001 (Kunming Q&A, rules from 2024-11-01) 问题三/四/十; 002 (Yunnan handbook 2022) 二、1-6.
Every expected number is written out as arithmetic; rounding is ROUND_HALF_UP to the fen at each
step. The default person (brdy 1960-06-15) is 64 in 2024 and active unless `retired=True`.
"""
from decimal import Decimal

import pytest

from tests.support import (accumulators, check, HOSPITAL, hospitals, line, person, run, setlinfo, settle, settlement)

D = Decimal




# ---------------------------------------------------------------------------------------------
# 002 二、6: "一级及以下定点医疗机构（含村卫生室、社区卫生服务站等）30元，二级定点医疗机构60元，三级定点
# 医疗机构90元 ... 在职职工 ... 一级及以下60%，二级55%，三级50%。退休人员的支付比例高于在职职工5个百分点"
# 001 三: "起付标准 ... 下调为20元、40元、60元 ... 退休人员支付比例由原来比在职工高5个百分点调整为高10个
# 百分点" (from 2024-11-01).
# Bill: 甲 drug 400 + 乙 drug 100 (先行自付 100×5% = 5), policy range 495 (001 问题四).
# ---------------------------------------------------------------------------------------------
OUTPATIENT_TABLE = [
    # day, retired, level, deductible, fund, personal
    ("2024-10-31", False, 1, "30", "279.00", "221.00"),   # (495-30)×60% = 279.00; 500-279 = 221.00
    ("2024-10-31", False, 2, "60", "239.25", "260.75"),   # (495-60)×55% = 239.25
    ("2024-10-31", False, 3, "90", "202.50", "297.50"),   # (495-90)×50% = 202.50
    ("2024-10-31", True, 1, "30", "302.25", "197.75"),    # (495-30)×65% = 302.25
    ("2024-10-31", True, 2, "60", "261.00", "239.00"),    # (495-60)×60% = 261.00
    ("2024-10-31", True, 3, "90", "222.75", "277.25"),    # (495-90)×55% = 222.75
    ("2024-11-01", False, 1, "20", "285.00", "215.00"),   # (495-20)×60% = 285.00
    ("2024-11-01", False, 2, "40", "250.25", "249.75"),   # (495-40)×55% = 250.25
    ("2024-11-01", False, 3, "60", "217.50", "282.50"),   # (495-60)×50% = 217.50
    ("2024-11-01", True, 1, "20", "332.50", "167.50"),    # (495-20)×70% = 332.50 (001 问题四)
    ("2024-11-01", True, 2, "40", "295.75", "204.25"),    # (495-40)×65% = 295.75 (001 问题四)
    ("2024-11-01", True, 3, "60", "261.00", "239.00"),    # (495-60)×60% = 261.00 (001 问题四)
]


@pytest.mark.parametrize("day, retired, level, dedc, fund, personal", OUTPATIENT_TABLE)
def test_general_outpatient_uses_the_2022_rules_the_day_before_and_the_2024_rules_from_1_november(
        day, retired, level, dedc, fund, personal):
    info = settle(person(retired=retired), settlement([line("400"), line("100", "02")], day=day, level=level))
    check(info, act_pay_dedc=dedc, hifp_pay=fund, psn_part_amt=personal, preselfpay_amt="5.00",
          inscp_scp_amt="495.00", hifob_pay="0")


def test_a_bill_below_the_outpatient_deductible_gets_nothing_from_the_fund():
    # 002 二、6 / 001 三: level-3 deductible 60 (2024-11). Bill 50 甲 < 60: deductible applied 50, fund 0.
    info = settle(person(), settlement([line("50")], level=3))
    check(info, act_pay_dedc="50.00", hifp_pay="0", psn_part_amt="50.00")


def test_the_outpatient_deductible_is_charged_on_every_settlement():
    # 002 二、6 "每次结算，政策范围内费用统筹基金起付标准" — per settlement, not per year.
    # Two visits at level 1, 2024-11, active, 200 甲 each: (200-20)×60% = 108.00 each.
    results = run(hospitals() + [person(), settlement([line("200")]), settlement([line("200")], day="2024-11-20")])
    for r in results[-2:]:
        check(setlinfo(r), act_pay_dedc="20.00", hifp_pay="108.00", psn_part_amt="92.00")


# ---------------------------------------------------------------------------------------------
# 002 二、6: "普通门诊政策范围内费用统筹基金年度最高支付限额为6000元 ... 超过6000元最高支付限额的普通门诊
# 政策范围内费用，按照就诊定点医疗机构住院支付比例执行，统筹基金年度最高支付限额与住院年度最高支付限额合并计算"
# 001 三 table: "基金年度最高支付限额为6000元，超过的按照职工医保住院待遇保障". Reading R4.
# ---------------------------------------------------------------------------------------------
def test_outpatient_cap_crossed_inside_one_settlement_splits_at_room_over_ratio():
    # Active, level 1, 2024-11, 5900 already paid: room 100. Bill 500 甲, deductible 20 → 480 eligible.
    # split cost 100 ÷ 60% = 166.666… → 166.67; paid 166.67×60% = 100.002 → 100.00 (the room)
    # rest 480 - 166.67 = 313.33 at inpatient level-1 active 91%: 313.33×91% = 285.1303 → 285.13
    # fund 100.00 + 285.13 = 385.13; personal 500 - 385.13 = 114.87
    info = settle(person(), accumulators(2024, op_pool_paid=D("5900")), settlement([line("500")]))
    check(info, act_pay_dedc="20.00", hifp_pay="385.13", hifob_pay="0", psn_part_amt="114.87")


def test_outpatient_cap_crossed_by_a_retiree_under_the_2022_rules_uses_the_retiree_inpatient_ratio():
    # Retired, level 3, 2024-10-15 (2022 rules: deductible 90, ratio 50%+5% = 55%), 5900 paid: room 100.
    # Bill 1000 甲 → 910 eligible. split 100 ÷ 55% = 181.8181… → 181.82; paid 100.00
    # rest 910 - 181.82 = 728.18 × 89% (retired level 3 inpatient) = 648.0802 → 648.08
    # fund 748.08; personal 1000 - 748.08 = 251.92
    info = settle(person(retired=True), accumulators(2024, op_pool_paid=D("5900")),
                  settlement([line("1000")], day="2024-10-15", level=3))
    check(info, act_pay_dedc="90.00", hifp_pay="748.08", psn_part_amt="251.92")


def test_outpatient_beyond_an_exhausted_cap_is_paid_at_the_inpatient_ratio_after_the_outpatient_deductible():
    # Active, level 2, 2024-11, 6000 paid: room 0. Bill 300 甲: deductible 40 (outpatient, not 550),
    # (300-40)×88% = 228.80; personal 71.20
    info = settle(person(), accumulators(2024, op_pool_paid=D("6000")), settlement([line("300")], level=2))
    check(info, act_pay_dedc="40.00", hifp_pay="228.80", psn_part_amt="71.20")


def test_outpatient_cap_room_is_consumed_by_earlier_settlements_of_the_year():
    # Active, level 1, 2024-11, 5800 preloaded: room 200.
    # visit 1: 200 甲: (200-20)×60% = 108.00 (room left 92)
    # visit 2: 300 甲: 280 eligible; split 92 ÷ 60% = 153.333… → 153.33; paid 153.33×60% = 91.998 → 92.00
    #          rest 280 - 153.33 = 126.67 × 91% = 115.2697 → 115.27; fund 92.00 + 115.27 = 207.27
    #          personal 300 - 207.27 = 92.73
    results = run(hospitals() + [person(), accumulators(2024, op_pool_paid=D("5800")),
                                 settlement([line("200")]), settlement([line("300")], day="2024-11-06")])
    check(setlinfo(results[-2]), hifp_pay="108.00")
    check(setlinfo(results[-1]), hifp_pay="207.27", psn_part_amt="92.73")


def test_outpatient_beyond_cap_shares_the_100000_fund_cap_and_then_gets_the_serious_illness_supplement():
    # 002 二、6 (merged cap) + 二、15 "超过基本统筹基金最高支付限额后 ... 大额医疗费用补助报销90%". R5.
    # Active, level 1, 2024-11; outpatient cap used (6000), merged cap 99900 used: room 100.
    # Bill 500 甲, deductible 20 → 480 at 91%: split 100 ÷ 91% = 109.8901… → 109.89; paid 100.00
    # rest 480 - 109.89 = 370.11 × 90% = 333.099 → 333.10 (大额); personal 500 - 100 - 333.10 = 66.90
    info = settle(person(), accumulators(2024, op_pool_paid=D("6000"), ip_pool_paid=D("99900")),
                  settlement([line("500")]))
    check(info, hifp_pay="100.00", hifob_pay="333.10", psn_part_amt="66.90")


def test_the_outpatient_cap_restarts_on_1_january():
    # 002 二、6 "在一个自然年度内". 6000 used in 2024; 2025-01-03, active level 1 (2024-11 rules):
    # 500 甲: (500-20)×60% = 288.00 at the outpatient ratio again.
    info = settle(person(), accumulators(2024, op_pool_paid=D("6000")), settlement([line("500")], day="2025-01-03"))
    check(info, hifp_pay="288.00", psn_part_amt="212.00")


# ---------------------------------------------------------------------------------------------
# 先行自付 and exclusions. 002 二、1 "不包含 ... 乙类 ... 按比例由个人先行支付的费用。不包含 ... 超过限价标准部分
# 的费用。不包含基本医疗保险目录外由个人全额支付的 ... 费用"; 二、2 "乙类药品先自付5% ... 谈判药先自付10% ...
# 丙类药品全自费"; 二、3 "乙类医疗服务项目先自付10% ... 丙类医疗服务项目全自费"; 二、4 "对医保不予支付的医疗
# 服务项目，无论使用哪类耗材，医保均不予报销". 乙 consumable 10% is a reading (catalog.yaml).
# ---------------------------------------------------------------------------------------------
def test_preselfpay_mix_of_drugs_services_and_consumables():
    # Active, level 1, 2024-11:
    #   甲 drug 100 (0) | 乙 drug 200 ×5% = 10 | negotiated drug 300 ×10% = 30 | 乙 service 150 ×10% = 15
    #   乙 consumable 80 ×10% = 8 | 丙 drug 50 full self-pay
    # total 880; 全自费 50; 先行自付 10+30+15+8 = 63; policy range 880-50-63 = 767
    # fund (767-20)×60% = 448.20; personal 880 - 448.20 = 431.80
    lines = [line("100"), line("200", "02"), line("300", "02", nego_drug_flag="1"), line("150", "02", "service"),
             line("80", "02", "consumable"), line("50", "03")]
    info = settle(person(), settlement(lines))
    check(info, medfee_sumamt="880.00", fulamt_ownpay_amt="50.00", preselfpay_amt="63.00", inscp_scp_amt="767.00",
          act_pay_dedc="20.00", hifp_pay="448.20", psn_part_amt="431.80")


def test_price_limit_excess_is_excluded_before_preselfpay():
    # 乙 drug: 10 units at a limit of 12 → 120 allowed; billed 150 → 超限价 30;
    # 先行自付 120×5% = 6.00; plus 甲 service 100. Total 250; policy range 250-30-6 = 214
    # Active level 2, 2024-11: (214-40)×55% = 95.70; personal 250 - 95.70 = 154.30
    lines = [line("150", "02", cnt=D("10"), pric_uplmt_amt=D("12")), line("100", "01", "service")]
    info = settle(person(), settlement(lines, level=2))
    check(info, overlmt_selfpay="30.00", preselfpay_amt="6.00", inscp_scp_amt="214.00", hifp_pay="95.70",
          psn_part_amt="154.30")


def test_a_consumable_used_with_a_class_c_service_is_full_self_pay_even_if_class_a():
    # 丙 service 200 + 甲 consumable 100 linked to it (svc_feedetl_sn "1") + 甲 drug 300.
    # 全自费 200 + 100 = 300; policy range 300. Active level 1, 2024-11: (300-20)×60% = 168.00
    # personal 600 - 168 = 432.00
    lines = [line("200", "03", "service"), line("100", "01", "consumable", svc_feedetl_sn="1"), line("300")]
    info = settle(person(), settlement(lines))
    check(info, fulamt_ownpay_amt="300.00", inscp_scp_amt="300.00", hifp_pay="168.00", psn_part_amt="432.00")


def test_a_class_b_consumable_used_with_a_covered_service_keeps_its_own_preselfpay():
    # 甲 service 200 + 乙 consumable 100 linked to it: 先行自付 100×10% = 10; policy range 290.
    # Active level 1, 2024-11: (290-20)×60% = 162.00; personal 300 - 162 = 138.00
    lines = [line("200", "01", "service"), line("100", "02", "consumable", svc_feedetl_sn="1")]
    info = settle(person(), settlement(lines))
    check(info, fulamt_ownpay_amt="0", preselfpay_amt="10.00", inscp_scp_amt="290.00", hifp_pay="162.00",
          psn_part_amt="138.00")


def test_preselfpay_is_rounded_per_line():
    # Two 乙 drugs of 33.33: each 33.33×5% = 1.6665 → 1.67; total 3.34 (summing first would give 3.33).
    # + 甲 drug 100: total 166.66; policy range 166.66 - 3.34 = 163.32
    # Active level 1, 2024-11: (163.32-20)×60% = 85.992 → 85.99; personal 166.66 - 85.99 = 80.67
    info = settle(person(), settlement([line("33.33", "02"), line("33.33", "02"), line("100")]))
    check(info, preselfpay_amt="3.34", inscp_scp_amt="163.32", hifp_pay="85.99", psn_part_amt="80.67")


# ---------------------------------------------------------------------------------------------
# Pharmacy. 002 二、5: "到定点零售药店配药或购买 ... 费用直接由定点零售药店划扣个人账户余额"
# 001 十: "可凭我省定点医疗机构 ... 电子处方，在门诊统筹定点零售药店购买，执行与开具处方定点医疗机构相同的
# 医保待遇政策" (2024-11 rules).
# ---------------------------------------------------------------------------------------------
def test_pharmacy_purchase_without_a_prescription_is_paid_from_the_account_only():
    # 300 甲 drug, balance 1000: fund 0, account 300, cash 0.
    info = settle(person(balc="1000"), settlement([line("300")], med_type="41", acct_used_flag="1"))
    check(info, hifp_pay="0", hifob_pay="0", acct_pay="300.00", psn_cash_pay="0", psn_part_amt="300.00")


def test_pharmacy_purchase_beyond_the_account_balance_is_paid_in_cash():
    # 300 甲 drug, balance 100: account 100, cash 200.
    info = settle(person(balc="100"), settlement([line("300")], med_type="41", acct_used_flag="1"))
    check(info, hifp_pay="0", acct_pay="100.00", psn_cash_pay="200.00")


@pytest.mark.parametrize("retired, level, fund", [
    (False, 2, "143.00"),  # (300-40)×55% = 143.00
    (True, 1, "196.00"),   # (300-20)×70% = 196.00
    (True, 3, "144.00"),   # (300-60)×60% = 144.00
])
def test_pharmacy_purchase_with_an_eprescription_gets_the_prescribing_institutions_outpatient_benefit(
        retired, level, fund):
    info = settle(person(retired=retired), settlement([line("300")], med_type="41",
                                                      rx_fixmedins_code=HOSPITAL[level], rx_hosp_lv=level))
    check(info, hifp_pay=fund, psn_part_amt=str(D("300") - D(fund)))


def test_pharmacy_eprescription_pooling_does_not_exist_before_1_november_2024():
    # 2022 rules (002 二、5): pharmacy purchases are account-only; fund 0 on 2024-10-31.
    info = settle(person(), settlement([line("300")], med_type="41", day="2024-10-31",
                                       rx_fixmedins_code=HOSPITAL[2], rx_hosp_lv=2))
    check(info, hifp_pay="0", hifob_pay="0", psn_part_amt="300.00")


def test_general_outpatient_deductible_is_not_halved_at_70():
    # R1: 二、16 lists 普通住院、慢性病门诊、特殊病门诊、急症抢救 — not 普通门诊. Retired, 74, level 1, 2024-11:
    # (500-20)×70% = 336.00
    info = settle(person(brdy="1950-01-01", retired=True), settlement([line("500")]))
    check(info, act_pay_dedc="20.00", hifp_pay="336.00", psn_part_amt="164.00")


@pytest.mark.parametrize("day", ["2024-10-31", "2024-11-05"])
def test_pharmacy_purchase_for_a_registered_chronic_disease_gets_the_chronic_benefit(day):
    # 002 二、5 "双通道 ... 按照各统筹地区现行特殊病、慢性病 ... 门诊保障政策执行" (both rule sets).
    # Filed 糖尿病 MXB16; e-prescription from the level-2 hospital; 1000 甲: (1000-300)×80% = 560.00
    from tests.support import filing
    info = settle(person(), filing("MXB16"),
                  settlement([line("1000")], med_type="41", day=day, dise_codg="MXB16",
                             rx_fixmedins_code=HOSPITAL[2], rx_hosp_lv=2))
    check(info, act_pay_dedc="300.00", hifp_pay="560.00", psn_part_amt="440.00")
