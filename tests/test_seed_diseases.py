"""Chronic (门诊慢性病) and special (门诊特殊病) disease outpatient: expectations derived by hand.

Seed 002 二、8-11 with readings R1, R5, R7. med_type 14 with `dise_codg`, after a 2503 filing.
Rounding ROUND_HALF_UP to the fen. Default person: 64 in 2024, active unless `retired=True`.
Bills are 甲 drugs, so the policy range equals the bill.
"""
from decimal import Decimal

import pytest

from tests.support import (accumulators, check, filing, line, person, settle, settle_all, settlement)

D = Decimal





def visit(amount, disease, level=2, day="2024-11-05"):
    return settlement([line(amount)], med_type="14", dise_codg=disease, level=level, day=day)


# 002 二、9: "登记了慢性病病种后 ... 统筹基金起付标准为300元，70岁以上起付标准减半，与住院起付标准分别计算；统筹
# 基金支付比例为80%；个人自付20%，单个病种统筹基金支付限额为2000元，每增加一个病种增加1000元，统筹基金年度最高
# 支付限额上限为5000元，与住院年度最高支付限额分别计算。"
def test_chronic_disease_visit_pays_80_percent_after_the_300_deductible():
    # (1000-300)×80% = 560.00; personal 440.00
    info = settle(person(), filing("MXB16"), visit("1000", "MXB16"))
    check(info, act_pay_dedc="300.00", hifp_pay="560.00", hifob_pay="0", psn_part_amt="440.00")


def test_chronic_disease_ratio_does_not_depend_on_level_or_status():
    # Retired at level 3: still 80%: (1000-300)×80% = 560.00
    info = settle(person(retired=True), filing("MXB16"), visit("1000", "MXB16", level=3))
    check(info, act_pay_dedc="300.00", hifp_pay="560.00")


def test_chronic_disease_is_recognised_by_its_chinese_name():
    # 二、8 lists "糖尿病" (code MXB16 in chronic.yaml). Same numbers as by code: 560.00
    info = settle(person(), filing("MXB16"), visit("1000", "糖尿病"))
    check(info, hifp_pay="560.00")


def test_chronic_deductible_is_met_once_per_year_across_visits():
    # R7. Visit 1: 1000 → (1000-300)×80% = 560.00. Visit 2: 500 → no deductible: 500×80% = 400.00
    infos = settle_all(person(), filing("MXB16"), visit("1000", "MXB16", day="2024-03-01"),
                       visit("500", "MXB16", day="2024-04-01"))
    check(infos[0], act_pay_dedc="300.00", hifp_pay="560.00")
    check(infos[1], act_pay_dedc="0", hifp_pay="400.00", psn_part_amt="100.00")


def test_a_chronic_deductible_left_partly_unmet_carries_to_the_next_visit():
    # Visit 1: 200 < 300 → deductible 200, fund 0. Visit 2: 500 → remaining 100: (500-100)×80% = 320.00
    infos = settle_all(person(), filing("MXB16"), visit("200", "MXB16", day="2024-03-01"),
                       visit("500", "MXB16", day="2024-04-01"))
    check(infos[0], act_pay_dedc="200.00", hifp_pay="0", psn_part_amt="200.00")
    check(infos[1], act_pay_dedc="100.00", hifp_pay="320.00", psn_part_amt="180.00")


def test_chronic_deductible_restarts_on_1_january():
    # Met in 2024; 2025-01-10 visit 1000: (1000-300)×80% = 560.00 again.
    infos = settle_all(person(), filing("MXB16"), visit("1000", "MXB16", day="2024-12-10"),
                       visit("1000", "MXB16", day="2025-01-10"))
    for info in infos:
        check(info, act_pay_dedc="300.00", hifp_pay="560.00")


def test_chronic_deductible_preloaded_from_elsewhere_counts():
    # accumulators: 100 of the 300 already met → 200 left: (1000-200)×80% = 640.00
    info = settle(person(), filing("MXB16"), accumulators(2024, chronic_dedc_paid=D("100")), visit("1000", "MXB16"))
    check(info, act_pay_dedc="200.00", hifp_pay="640.00")


def test_chronic_deductible_is_halved_at_70():
    # 二、9 "70岁以上起付标准减半"; R1 (any insured). Active, born 1950: 150; (1000-150)×80% = 680.00
    info = settle(person(brdy="1950-01-01"), filing("MXB16"), visit("1000", "MXB16"))
    check(info, act_pay_dedc="150.00", hifp_pay="680.00", psn_part_amt="320.00")


def test_one_chronic_disease_caps_the_fund_at_2000_then_pays_nothing_more():
    # Visit 1: 3000 → (3000-300)×80% = 2160 > 2000 → 2000.00; personal 1000.00
    # Visit 2: 500 → cap exhausted: 0, no 大额 (R7); personal 500.00
    infos = settle_all(person(), filing("MXB16"), visit("3000", "MXB16", day="2024-03-01"),
                       visit("500", "MXB16", day="2024-04-01"))
    check(infos[0], hifp_pay="2000.00", hifob_pay="0", psn_part_amt="1000.00")
    check(infos[1], hifp_pay="0", hifob_pay="0", psn_part_amt="500.00")


def test_chronic_cap_room_preloaded_from_elsewhere_counts():
    # 1900 of 2000 used: (1000-300)×80% = 560 → room 100.00
    info = settle(person(), filing("MXB16"), accumulators(2024, chronic_pool_paid=D("1900")), visit("1000", "MXB16"))
    check(info, hifp_pay="100.00", hifob_pay="0", psn_part_amt="900.00")


@pytest.mark.parametrize("diseases, cap", [
    (["MXB16"], "2000.00"),
    (["MXB16", "MXB10"], "3000.00"),
    (["MXB16", "MXB10", "MXB01"], "4000.00"),
    (["MXB16", "MXB10", "MXB01", "MXB08"], "5000.00"),
    (["MXB16", "MXB10", "MXB01", "MXB08", "MXB24"], "5000.00"),  # 上限为5000元
])
def test_chronic_cap_grows_by_1000_per_registered_disease_up_to_5000(diseases, cap):
    # Bill 8000: (8000-300)×80% = 6160 > every cap → the cap.
    info = settle(person(), *[filing(d) for d in diseases], visit("8000", "MXB16"))
    check(info, hifp_pay=cap, hifob_pay="0", psn_part_amt=str(D("8000") - D(cap)))


def test_chronic_cap_is_separate_from_the_inpatient_cap():
    # 二、9 "与住院年度最高支付限额分别计算". Inpatient cap fully used: chronic still pays (1000-300)×80% = 560.00
    info = settle(person(), filing("MXB16"), accumulators(2024, ip_pool_paid=D("100000")), visit("1000", "MXB16"))
    check(info, hifp_pay="560.00", hifob_pay="0")


def test_chronic_visit_is_not_an_inpatient_admission():
    # Chronic visit then a stay at level 1: first admission 400: (5000-400)×91% = 4186.00
    infos = settle_all(person(), filing("MXB16"), visit("1000", "MXB16", day="2024-03-01"),
                       settlement([line("5000")], med_type="21", level=1, day="2024-04-01"))
    check(infos[1], act_pay_dedc="400.00", hifp_pay="4186.00")


# 002 二、8/二、10 "登记了 ... 病种后方可享受相应待遇"; 001 五 "慢性病特殊病外的门诊可享受普通门诊报销待遇".
def test_an_unregistered_disease_is_settled_as_general_outpatient():
    # No filing: general outpatient, level 1, 2024-11, active: (500-20)×60% = 288.00
    info = settle(person(), visit("500", "MXB16", level=1))
    check(info, act_pay_dedc="20.00", hifp_pay="288.00", psn_part_amt="212.00")


def test_a_visit_for_a_disease_other_than_the_registered_one_is_general_outpatient():
    # Filed 高血压 (MXB10), visit for 糖尿病 (MXB16): (500-20)×60% = 288.00
    info = settle(person(), filing("MXB10"), visit("500", "MXB16", level=1))
    check(info, act_pay_dedc="20.00", hifp_pay="288.00")


def test_a_filing_that_starts_after_the_visit_does_not_count_yet():
    # Filing begins 2024-12-01, visit 2024-11-05 → general outpatient: (500-20)×60% = 288.00
    info = settle(person(), filing("MXB16", begndate="2024-12-01"), visit("500", "MXB16", level=1))
    check(info, hifp_pay="288.00")


# 002 二、11: "登记了特殊病病种后 ... 统筹基金起付标准为880元，70岁以上起付标准减半，与住院起付标准分别计算；统筹
# 基金支付比例按照就诊定点医疗机构住院支付比例执行；统筹基金年度最高支付限额与住院年度最高支付限额合并计算。"
def test_special_disease_pays_the_inpatient_ratio_after_the_880_deductible():
    # Active level 3: (5000-880)×85% = 3502.00; personal 1498.00
    info = settle(person(), filing("TSB01"), visit("5000", "TSB01", level=3))
    check(info, act_pay_dedc="880.00", hifp_pay="3502.00", psn_part_amt="1498.00")


def test_special_deductible_is_met_once_per_year():
    # R7. Visit 1 as above 3502.00; visit 2 (2000, level 3): 2000×85% = 1700.00
    infos = settle_all(person(), filing("TSB01"), visit("5000", "TSB01", level=3, day="2024-03-01"),
                       visit("2000", "TSB01", level=3, day="2024-04-01"))
    check(infos[0], hifp_pay="3502.00")
    check(infos[1], act_pay_dedc="0", hifp_pay="1700.00", psn_part_amt="300.00")


def test_special_deductible_is_halved_at_70_with_no_inpatient_floor():
    # Retired, 74, level 1: 880/2 = 440; (1000-440)×95% = 532.00 (80% floor is inpatient only)
    info = settle(person(brdy="1950-01-01", retired=True), filing("TSB01"), visit("1000", "TSB01", level=1))
    check(info, act_pay_dedc="440.00", hifp_pay="532.00", psn_part_amt="468.00")


def test_special_disease_shares_the_100000_cap_then_gets_the_serious_illness_supplement():
    # Active level 2, 99500 used: room 500. Bill 5000: eligible 5000-880 = 4120.
    # split 500 ÷ 88% = 568.1818… → 568.18; fund 568.18×88% = 499.9984 → 500.00
    # rest 4120 - 568.18 = 3551.82 × 90% = 3196.638 → 3196.64; personal 5000 - 500 - 3196.64 = 1303.36
    info = settle(person(), filing("TSB01"), accumulators(2024, ip_pool_paid=D("99500")), visit("5000", "TSB01"))
    check(info, hifp_pay="500.00", hifob_pay="3196.64", psn_part_amt="1303.36")


def test_special_deductible_is_separate_from_the_inpatient_deductible():
    # "与住院起付标准分别计算". Active: stay level 1 (5000: (5000-400)×91% = 4186.00), then special at level 1:
    # still 880: (5000-880)×91% = 3749.20; then another stay: second admission 120: (5000-120)×91% = 4440.80
    infos = settle_all(person(), filing("TSB01"),
                       settlement([line("5000")], med_type="21", level=1, day="2024-03-01"),
                       visit("5000", "TSB01", level=1, day="2024-04-01"),
                       settlement([line("5000")], med_type="21", level=1, day="2024-05-01"))
    check(infos[0], act_pay_dedc="400.00", hifp_pay="4186.00")
    check(infos[1], act_pay_dedc="880.00", hifp_pay="3749.20")
    check(infos[2], act_pay_dedc="120.00", hifp_pay="4440.80")


def test_chronic_and_special_registrations_keep_separate_deductibles():
    # Filed MXB16 and TSB01. Chronic visit 1000 (L2): (1000-300)×80% = 560.00;
    # special visit 5000 (L2, active 88%): (5000-880)×88% = 3625.60
    infos = settle_all(person(), filing("MXB16"), filing("TSB01"), visit("1000", "MXB16", day="2024-03-01"),
                       visit("5000", "TSB01", day="2024-04-01"))
    check(infos[0], act_pay_dedc="300.00", hifp_pay="560.00")
    check(infos[1], act_pay_dedc="880.00", hifp_pay="3625.60")
