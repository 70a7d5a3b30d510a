"""Inpatient, emergency rescue, day surgery, 大额 and the 70+ rules: expectations derived by hand.

Seed 002 (Yunnan handbook 2022) 二、7, 13, 14, 15, 16, with readings R1-R6. Rounding ROUND_HALF_UP to
the fen at each step. The default person (brdy 1960-06-15) is 64 in 2024 and active unless
`retired=True`. Bills are 甲 drugs unless stated, so the policy range equals the bill.
"""
from decimal import Decimal

import pytest

from tests.support import (accumulators, check, hospitals, line, person, run, setlinfo, settle, settle_all, settlement)

D = Decimal
SEVENTY_ON_5_NOV = "1954-11-05"  # turns 70 on 2024-11-05





def stay(amount, level, day="2024-11-05", lv="01"):
    return settlement([line(amount, lv)], med_type="21", level=level, day=day)


# 002 二、14: "三级定点医疗机构第一次住院880元，第二次住院264元；二级 ... 第一次住院550元，第二次住院165元；一级
# 及以下 ... 第一次住院400元，第二次住院120元；第三次起均不再出起付线，70岁以上老人减半。在职 ... 三级85%，二级
# 88%，一级及以下91%。退休 ... 三级89%，二级92%，一级及以下95%。"
@pytest.mark.parametrize("retired, level, dedc, fund, personal", [
    (False, 1, "400", "8736.00", "1264.00"),  # (10000-400)×91% = 8736.00
    (False, 2, "550", "8316.00", "1684.00"),  # (10000-550)×88% = 8316.00
    (False, 3, "880", "7752.00", "2248.00"),  # (10000-880)×85% = 7752.00
    (True, 1, "400", "9120.00", "880.00"),    # (10000-400)×95% = 9120.00
    (True, 2, "550", "8694.00", "1306.00"),   # (10000-550)×92% = 8694.00
    (True, 3, "880", "8116.80", "1883.20"),   # (10000-880)×89% = 8116.80
])
def test_first_admission_of_the_year_pays_the_first_admission_deductible_and_the_level_ratio(
        retired, level, dedc, fund, personal):
    info = settle(person(retired=retired), stay("10000", level))
    check(info, act_pay_dedc=dedc, hifp_pay=fund, hifob_pay="0", psn_part_amt=personal, inscp_scp_amt="10000.00")


@pytest.mark.parametrize("prior, level, dedc, fund", [
    (1, 1, "120", "4440.80"),  # (5000-120)×91% = 4440.80
    (1, 2, "165", "4254.80"),  # (5000-165)×88% = 4254.80
    (1, 3, "264", "4025.60"),  # (5000-264)×85% = 4025.60
    (2, 1, "0", "4550.00"),    # 5000×91% = 4550.00
    (2, 2, "0", "4400.00"),    # 5000×88% = 4400.00
    (2, 3, "0", "4250.00"),    # 5000×85% = 4250.00
    (5, 3, "0", "4250.00"),    # 第三次起均不再出起付线
])
def test_later_admissions_pay_the_second_admission_deductible_then_none(prior, level, dedc, fund):
    info = settle(person(), accumulators(2024, adm_cnt=prior), stay("5000", level))
    check(info, act_pay_dedc=dedc, hifp_pay=fund, psn_part_amt=str(D("5000") - D(fund)))


def test_admission_ordinal_counts_admissions_at_any_level_in_the_year():
    # R2. Active: 1st at level 3 (10000): (10000-880)×85% = 7752.00
    #             2nd at level 2 (5000): (5000-165)×88% = 4254.80
    #             3rd at level 1 (3000): 3000×91% = 2730.00
    infos = settle_all(person(), stay("10000", 3, "2024-03-01"), stay("5000", 2, "2024-06-01"),
                       stay("3000", 1, "2024-09-01"))
    check(infos[0], act_pay_dedc="880.00", hifp_pay="7752.00")
    check(infos[1], act_pay_dedc="165.00", hifp_pay="4254.80")
    check(infos[2], act_pay_dedc="0", hifp_pay="2730.00")


def test_admission_ordinal_restarts_on_1_january():
    # 二、14 "在一个自然年度内"; R2. Active level 1, 5000 each: 2024-12-20 first (400) then 2025-01-05 first
    # again (400, not 120): (5000-400)×91% = 4186.00 each.
    infos = settle_all(person(), stay("5000", 1, "2024-12-20"), stay("5000", 1, "2025-01-05"))
    for info in infos:
        check(info, act_pay_dedc="400.00", hifp_pay="4186.00", psn_part_amt="814.00")


# 70岁以上: R1 (age on the settlement date, ≥ 70, any insured for inpatient)
@pytest.mark.parametrize("day, dedc, fund", [
    ("2024-11-04", "880", "7752.00"),  # age 69: (10000-880)×85% = 7752.00
    ("2024-11-05", "440", "8126.00"),  # 70th birthday: 880/2 = 440; (10000-440)×85% = 8126.00
])
def test_inpatient_deductible_is_halved_from_the_70th_birthday(day, dedc, fund):
    info = settle(person(brdy=SEVENTY_ON_5_NOV), stay("10000", 3, day))
    check(info, act_pay_dedc=dedc, hifp_pay=fund)


def test_second_admission_deductible_is_halved_at_70():
    # Active, 70, level 2, one prior admission: 165/2 = 82.50; (5000-82.50)×88% = 4327.40
    info = settle(person(brdy="1950-01-01"), accumulators(2024, adm_cnt=1), stay("5000", 2))
    check(info, act_pay_dedc="82.50", hifp_pay="4327.40", psn_part_amt="672.60")


def test_retiree_at_70_above_the_80_percent_floor_gets_the_ordinary_calculation():
    # 二、16 "政策范围内住院费用报销比例达80%". Retired, 70 today, level 3 first: 440;
    # (10000-440)×89% = 8508.40 ≥ 80%×10000 = 8000 → no top-up.
    info = settle(person(brdy=SEVENTY_ON_5_NOV, retired=True), stay("10000", 3))
    check(info, act_pay_dedc="440.00", hifp_pay="8508.40", psn_part_amt="1491.60")


def test_retiree_at_70_is_topped_up_to_80_percent_of_the_policy_range():
    # 二、16 "达不到80%的，由基本医疗保险统筹补足差额部分"; R6. Retired, 70, level 3 first admission:
    # 甲 1000 + 乙 drug 1000 (先行自付 50): policy range 1950.
    # ordinary (1950-440)×89% = 1343.90 < 1950×80% = 1560.00 → fund 1560.00; personal 2000-1560 = 440.00
    info = settle(person(brdy=SEVENTY_ON_5_NOV, retired=True),
                  settlement([line("1000"), line("1000", "02")], med_type="21", level=3))
    check(info, inscp_scp_amt="1950.00", act_pay_dedc="440.00", hifp_pay="1560.00", psn_part_amt="440.00")


def test_retiree_aged_69_is_not_topped_up():
    # Retired, 69 (day before the birthday), level 3 first: (2000-880)×89% = 996.80 (< 1600, no floor)
    info = settle(person(brdy=SEVENTY_ON_5_NOV, retired=True), stay("2000", 3, "2024-11-04"))
    check(info, act_pay_dedc="880.00", hifp_pay="996.80", psn_part_amt="1003.20")


def test_active_employee_aged_70_gets_the_halved_deductible_but_not_the_80_percent_floor():
    # R1 halving for any insured; R6 floor for retirees only. (2000-440)×85% = 1326.00 (< 1600, no top-up)
    info = settle(person(brdy=SEVENTY_ON_5_NOV), stay("2000", 3))
    check(info, act_pay_dedc="440.00", hifp_pay="1326.00", psn_part_amt="674.00")


def test_the_80_percent_floor_cannot_exceed_the_fund_cap_room():
    # R6 "within cap room". Retired, 70, level 3 first, 99000 of the 100000 cap used: room 1000.
    # Bill 2000: eligible 2000-440 = 1560; split 1000 ÷ 89% = 1123.5955… → 1123.60; fund 1000.00
    # rest 1560 - 1123.60 = 436.40 × 90% = 392.76 (大额); no room left for the floor.
    # personal 2000 - 1000 - 392.76 = 607.24
    info = settle(person(brdy=SEVENTY_ON_5_NOV, retired=True), accumulators(2024, ip_pool_paid=D("99000")),
                  stay("2000", 3))
    check(info, hifp_pay="1000.00", hifob_pay="392.76", psn_part_amt="607.24")


# 002 二、15: "医疗费用超过基本统筹基金最高支付限额后，自动进入大额医疗费用补助报销，职工大额医疗费用补助报销90%，
# 取消最高支付限额限制"; 二、14 "纯统筹基金最高支付限额10万". R5.
def test_crossing_the_100000_fund_cap_moves_the_rest_to_the_serious_illness_supplement():
    # Active, level 1 first, 99000 used: room 1000. Bill 5000: eligible 4600.
    # split 1000 ÷ 91% = 1098.9010… → 1098.90; fund 1098.90×91% = 999.999 → 1000.00
    # rest 4600 - 1098.90 = 3501.10 × 90% = 3150.99; personal 5000 - 1000 - 3150.99 = 849.01
    info = settle(person(), accumulators(2024, ip_pool_paid=D("99000")), stay("5000", 1))
    check(info, act_pay_dedc="400.00", hifp_pay="1000.00", hifob_pay="3150.99", psn_part_amt="849.01")


def test_a_single_large_stay_crosses_the_cap_on_its_own():
    # Active, level 3 first, bill 200000: eligible 199120. split 100000 ÷ 85% = 117647.0588… → 117647.06
    # fund 100000.00; rest 199120 - 117647.06 = 81472.94 × 90% = 73325.646 → 73325.65
    # personal 200000 - 100000 - 73325.65 = 26674.35
    info = settle(person(), stay("200000", 3))
    check(info, hifp_pay="100000.00", hifob_pay="73325.65", psn_part_amt="26674.35")


def test_after_the_cap_is_exhausted_everything_eligible_gets_90_percent_uncapped():
    # Retired, level 2, second admission (165), cap used: (3000-165)×90% = 2551.50 大额; fund 0.
    info = settle(person(retired=True), accumulators(2024, ip_pool_paid=D("100000"), adm_cnt=1), stay("3000", 2))
    check(info, act_pay_dedc="165.00", hifp_pay="0", hifob_pay="2551.50", psn_part_amt="448.50")


def test_the_fund_cap_restarts_on_1_january():
    # Cap used in 2024; 2025-01-10 active level 1 first: (5000-400)×91% = 4186.00, no 大额.
    info = settle(person(), accumulators(2024, ip_pool_paid=D("100000"), adm_cnt=3), stay("5000", 1, "2025-01-10"))
    check(info, act_pay_dedc="400.00", hifp_pay="4186.00", hifob_pay="0")


# 002 二、7: "急诊抢救 ... 起付标准、支付比例执行救治医疗机构级别住院起付标准、支付比例，统筹基金年度最高支付限额
# 与住院年度最高支付限额合并计算". R3.
def rescue(amount, level, day="2024-11-05"):
    return settlement([line(amount)], med_type="13", level=level, day=day)


def test_emergency_rescue_with_no_admission_that_year_uses_the_first_admission_deductible():
    # Active level 2: (3000-550)×88% = 2156.00
    info = settle(person(), rescue("3000", 2))
    check(info, act_pay_dedc="550.00", hifp_pay="2156.00", psn_part_amt="844.00")


def test_emergency_rescue_after_one_admission_uses_the_second_admission_deductible():
    # Active: admission at level 1 (5000: (5000-400)×91% = 4186.00), then rescue level 2 3000:
    # (3000-165)×88% = 2494.80
    infos = settle_all(person(), stay("5000", 1, "2024-10-01"), rescue("3000", 2))
    check(infos[0], hifp_pay="4186.00")
    check(infos[1], act_pay_dedc="165.00", hifp_pay="2494.80", psn_part_amt="505.20")


def test_emergency_rescue_is_not_an_admission():
    # R2/R3. Two rescues then a stay, active, all with no admission before:
    # rescue L2 3000: (3000-550)×88% = 2156.00; rescue L1 1000: (1000-400)×91% = 546.00
    # stay L1 5000: still the first admission: (5000-400)×91% = 4186.00
    infos = settle_all(person(), rescue("3000", 2, "2024-03-01"), rescue("1000", 1, "2024-04-01"),
                       stay("5000", 1, "2024-05-01"))
    check(infos[0], hifp_pay="2156.00")
    check(infos[1], act_pay_dedc="400.00", hifp_pay="546.00")
    check(infos[2], act_pay_dedc="400.00", hifp_pay="4186.00")


def test_emergency_rescue_deductible_is_halved_at_70_without_the_inpatient_floor():
    # 二、16 lists 急症抢救 for halving; R6 floor is inpatient only. Retired, 70, level 3, no admission:
    # 880/2 = 440; (1000-440)×89% = 498.40 (80% would be 800: not applied); personal 501.60
    info = settle(person(brdy=SEVENTY_ON_5_NOV, retired=True), rescue("1000", 3))
    check(info, act_pay_dedc="440.00", hifp_pay="498.40", psn_part_amt="501.60")


def test_emergency_rescue_shares_the_100000_cap():
    # Active level 3, no admission, cap used 99500: room 500. Bill 3000: eligible 3000-880 = 2120.
    # split 500 ÷ 85% = 588.2352… → 588.24; fund 500.00; rest 2120 - 588.24 = 1531.76 × 90% = 1378.584 → 1378.58
    # personal 3000 - 500 - 1378.58 = 1121.42
    info = settle(person(), accumulators(2024, ip_pool_paid=D("99500")), rescue("3000", 3))
    check(info, hifp_pay="500.00", hifob_pay="1378.58", psn_part_amt="1121.42")


# 002 二、13: "日间手术，统筹基金起付标准按照就诊定点医疗机构住院起付标准减半执行，与住院起付标准分别计算；统筹基金
# 支付比例执行就诊定点医疗机构住院支付比例；统筹基金年度最高支付限额与住院年度最高支付限额合并计算". R3.
def day_surgery(amount, level, day="2024-11-05"):
    return settlement([line(amount)], med_type="28", level=level, day=day)


@pytest.mark.parametrize("retired, level, dedc, fund", [
    (False, 3, "440", "6426.00"),  # 880/2 = 440; (8000-440)×85% = 6426.00
    (False, 2, "275", "6798.00"),  # 550/2 = 275; (8000-275)×88% = 6798.00
    (True, 1, "200", "7410.00"),   # 400/2 = 200; (8000-200)×95% = 7410.00
])
def test_day_surgery_pays_half_the_first_admission_deductible_and_the_inpatient_ratio(retired, level, dedc, fund):
    info = settle(person(retired=retired), day_surgery("8000", level))
    check(info, act_pay_dedc=dedc, hifp_pay=fund, psn_part_amt=str(D("8000") - D(fund)))


def test_day_surgery_deductible_does_not_follow_the_admission_ordinal():
    # Two prior admissions: an inpatient stay would have no deductible, day surgery still 440.
    # (8000-440)×85% = 6426.00
    info = settle(person(), accumulators(2024, adm_cnt=2), day_surgery("8000", 3))
    check(info, act_pay_dedc="440.00", hifp_pay="6426.00")


def test_day_surgery_is_charged_per_settlement_and_is_not_an_admission():
    # Active level 3: day surgery 8000 → 6426.00; again 8000 → 6426.00 (deductible again);
    # then a stay at level 3 is the first admission: (10000-880)×85% = 7752.00
    infos = settle_all(person(), day_surgery("8000", 3, "2024-03-01"), day_surgery("8000", 3, "2024-04-01"),
                       stay("10000", 3, "2024-05-01"))
    check(infos[0], act_pay_dedc="440.00", hifp_pay="6426.00")
    check(infos[1], act_pay_dedc="440.00", hifp_pay="6426.00")
    check(infos[2], act_pay_dedc="880.00", hifp_pay="7752.00")


def test_day_surgery_at_70_is_not_halved_again_and_has_no_floor():
    # R1: day surgery is not in the 二、16 list; R6 floor is inpatient only. Retired, 70, level 3:
    # 440 (not 220); (1000-440)×89% = 498.40 (80% would be 800); personal 501.60
    info = settle(person(brdy=SEVENTY_ON_5_NOV, retired=True), day_surgery("1000", 3))
    check(info, act_pay_dedc="440.00", hifp_pay="498.40", psn_part_amt="501.60")


def test_inpatient_preselfpay_and_class_c_lines_are_outside_the_policy_range():
    # 002 二、1-3. Active level 2 first: 甲 6000 + 乙 service 2000 (10% = 200) + 丙 drug 500.
    # policy range 8500 - 500 - 200 = 7800; (7800-550)×88% = 6380.00; personal 8500 - 6380 = 2120.00
    lines = [line("6000"), line("2000", "02", "service"), line("500", "03")]
    info = settle(person(), settlement(lines, med_type="21", level=2))
    check(info, fulamt_ownpay_amt="500.00", preselfpay_amt="200.00", inscp_scp_amt="7800.00",
          hifp_pay="6380.00", psn_part_amt="2120.00")


def test_emergency_rescue_at_70_after_one_admission_pays_half_the_second_admission_deductible():
    # R1 + R3. Active, 74, one admission this year, rescue at level 2: 165/2 = 82.50;
    # (3000-82.50)×88% = 2567.40; personal 432.60
    info = settle(person(brdy="1950-01-01"), accumulators(2024, adm_cnt=1), rescue("3000", 2))
    check(info, act_pay_dedc="82.50", hifp_pay="2567.40", psn_part_amt="432.60")


def test_a_cancelled_admission_no_longer_counts_toward_the_ordinal():
    # R2 counts admissions settled in the year; a cancelled (2305) settlement is undone.
    # Active level 1: stay A (5000) settled then cancelled; stay B (5000) is the first admission again:
    # (5000-400)×91% = 4186.00
    from tests.support import cancel
    a = stay("5000", 1, "2024-03-01")
    rs = run(hospitals() + [person(), a, cancel(a), stay("5000", 1, "2024-04-01")])
    assert rs[-2]["infcode"] == 0, rs[-2]["err_msg"]
    check(setlinfo(rs[-1]), act_pay_dedc="400.00", hifp_pay="4186.00")
