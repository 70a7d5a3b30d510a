"""Medical assistance (医疗救助) for hardship employees: expectations derived by hand.

Seed 002 三、2: "深度困难职工按照基数10%确定，相对困难职工按照基数25%确定，一个自然年度内医疗救助起付标准累计计算。
医疗救助支付比例：深度困难职工按照60%支付比例救助，相对困难职工按照50%支付比例救助。"
Reading R9: assistance works on the policy-range burden left after the basic fund and 大额
(inscp_scp_amt − hifp_pay − hifob_pay); its deductible accumulates over the natural year.
Rounding ROUND_HALF_UP to the fen. Default person: 64 in 2024, active. Bills are 甲 unless stated.
"""
from decimal import Decimal

from tests.support import (accumulators, check, filing, line, person, settle, settle_all, settlement)

D = Decimal





def deep(base="20000", **kw):
    return person(maf_lv="deep", maf_base_inc=base, **kw)


def relative(base="20000", **kw):
    return person(maf_lv="relative", maf_base_inc=base, **kw)


def stay(amount, level=1, day="2024-11-05", lines=None):
    return settlement(lines or [line(amount)], med_type="21", level=level, day=day)


def test_deep_hardship_assistance_pays_60_percent_above_10_percent_of_the_base():
    # Base 20000 → deductible 2000. Active level 3 first stay 20000: fund (20000-880)×85% = 16252.00
    # burden 20000 - 16252 = 3748.00; assistance (3748 - 2000)×60% = 1048.80
    # personal 20000 - 16252 - 1048.80 = 2699.20
    info = settle(deep(), stay("20000", level=3))
    check(info, act_pay_dedc="880.00", hifp_pay="16252.00", maf_pay="1048.80", psn_part_amt="2699.20")


def test_relative_hardship_assistance_pays_50_percent_above_25_percent_of_the_base():
    # Base 20000 → deductible 5000. Active level 1:
    # stay 1 (50000): fund (50000-400)×91% = 45136.00; burden 4864.00 < 5000 → 0 (4864 of 5000 met)
    # stay 2 (30000, 2nd admission 120): fund (30000-120)×91% = 27190.80; burden 2809.20
    #   deductible left 5000 - 4864 = 136; assistance (2809.20 - 136)×50% = 1336.60
    #   personal 30000 - 27190.80 - 1336.60 = 1472.60
    infos = settle_all(relative(), stay("50000", day="2024-03-01"), stay("30000", day="2024-06-01"))
    check(infos[0], hifp_pay="45136.00", maf_pay="0", psn_part_amt="4864.00")
    check(infos[1], hifp_pay="27190.80", maf_pay="1336.60", psn_part_amt="1472.60")


def test_the_assistance_deductible_accumulates_across_benefits_in_the_year():
    # "一个自然年度内医疗救助起付标准累计计算". Deep, base 20000 → 2000. Active:
    # 1 general outpatient L1 1000: fund (1000-20)×60% = 588.00; burden 412 → all deductible (412 met)
    # 2 stay L1 10000 (1st): fund (10000-400)×91% = 8736.00; burden 1264 → all deductible (1676 met)
    # 3 stay L1 5000 (2nd, 120): fund (5000-120)×91% = 4440.80; burden 559.20; deductible left 324
    #   assistance (559.20 - 324)×60% = 141.12; personal 5000 - 4440.80 - 141.12 = 418.08
    infos = settle_all(deep(), settlement([line("1000")], day="2024-11-02"), stay("10000", day="2024-11-05"),
                       stay("5000", day="2024-11-20"))
    check(infos[0], hifp_pay="588.00", maf_pay="0", psn_part_amt="412.00")
    check(infos[1], hifp_pay="8736.00", maf_pay="0", psn_part_amt="1264.00")
    check(infos[2], hifp_pay="4440.80", maf_pay="141.12", psn_part_amt="418.08")


def test_assistance_deductible_met_elsewhere_counts_and_restarts_on_1_january():
    # Deep, base 10000 → 1000, met in 2024 (preloaded). General outpatient L1 500:
    # fund (500-20)×60% = 288.00; burden 212.00
    # 2024-11-05: assistance 212×60% = 127.20; personal 500 - 288 - 127.20 = 84.80
    # 2025-01-10: deductible restarts: 212 < 1000 → 0; personal 212.00
    infos = settle_all(deep("10000"), accumulators(2024, maf_dedc_paid=D("1000")),
                       settlement([line("500")]), settlement([line("500")], day="2025-01-10"))
    check(infos[0], hifp_pay="288.00", maf_pay="127.20", psn_part_amt="84.80")
    check(infos[1], hifp_pay="288.00", maf_pay="0", psn_part_amt="212.00")


def test_assistance_does_not_cover_class_c_or_preselfpay():
    # R9 / 002 二、1: only the policy range. Deep, base 10000 → 1000. Active level 2 first stay:
    # 甲 10000 + 乙 drug 2000 (先行自付 100) + 丙 1000: total 13000, policy range 11900
    # fund (11900-550)×88% = 9988.00; burden 11900 - 9988 = 1912.00; assistance (1912-1000)×60% = 547.20
    # personal 13000 - 9988 - 547.20 = 2464.80
    lines = [line("10000"), line("2000", "02"), line("1000", "03")]
    info = settle(deep("10000"), stay(None, level=2, lines=lines))
    check(info, inscp_scp_amt="11900.00", hifp_pay="9988.00", maf_pay="547.20", psn_part_amt="2464.80")


def test_assistance_comes_after_the_serious_illness_supplement():
    # Deep, base 10000 → 1000. Cap used: active level 1 first stay 10000: eligible 9600 × 90% = 8640.00 大额
    # burden 10000 - 0 - 8640 = 1360.00; assistance (1360 - 1000)×60% = 216.00
    # personal 10000 - 8640 - 216 = 1144.00
    info = settle(deep("10000"), accumulators(2024, ip_pool_paid=D("100000")), stay("10000"))
    check(info, hifp_pay="0", hifob_pay="8640.00", maf_pay="216.00", psn_part_amt="1144.00")


def test_assistance_applies_to_chronic_disease_visits():
    # R9 "every pooled settlement". Deep, base 10000, deductible met. Chronic MXB16 1000 at L2:
    # fund (1000-300)×80% = 560.00; burden 440.00; assistance 440×60% = 264.00; personal 176.00
    info = settle(deep("10000"), accumulators(2024, maf_dedc_paid=D("1000")), filing("MXB16"),
                  settlement([line("1000")], med_type="14", dise_codg="MXB16", level=2))
    check(info, hifp_pay="560.00", maf_pay="264.00", psn_part_amt="176.00")


def test_relative_hardship_on_a_retiree_at_70_with_the_80_percent_floor():
    # Relative, base 4000 → 1000, 50%. Retired, 74, level 3 first stay 2000:
    # deductible 880/2 = 440; (2000-440)×89% = 1388.40 < 80%×2000 = 1600.00 → fund 1600.00
    # burden 2000 - 1600 = 400.00 < 1000 → assistance 0; personal 400.00
    info = settle(relative("4000", brdy="1950-01-01", retired=True), stay("2000", level=3))
    check(info, hifp_pay="1600.00", maf_pay="0", psn_part_amt="400.00")


def test_no_assistance_on_an_account_only_pharmacy_purchase():
    # 002 二、5: account-only, no pooled benefit, hence nothing for assistance (R9 reading).
    info = settle(deep("10000"), accumulators(2024, maf_dedc_paid=D("1000")),
                  settlement([line("300")], med_type="41"))
    check(info, hifp_pay="0", maf_pay="0", psn_part_amt="300.00")


def test_no_assistance_for_people_without_a_hardship_status():
    # Same outpatient visit for an ordinary person: (500-20)×60% = 288.00; maf 0; personal 212.00
    info = settle(person(), settlement([line("500")]))
    check(info, hifp_pay="288.00", maf_pay="0", psn_part_amt="212.00")
