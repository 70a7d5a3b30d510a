"""Maternity, family planning and assisted reproduction packages: expectations derived by hand.

Seed 002 四、1-3 (and 七、3 for a male employee's non-working spouse), reading R8: the fund pays the
fixed packages whatever the bill; the person pays max(0, bill − packages); `pkg_surplus_pay` =
max(0, packages − bill) goes to the insured. Codes from the processors/maternity.py docstring:
matn_type 1 顺产, 2 难产, 3 剖宫产, 4 流产/终止妊娠 (by geso_mons), 5 辅助生殖; birctrl_type 1 放置宫内节育器,
2 摘取宫内节育器, 3 输卵管结扎术, 4 输精管结扎术, 5 输卵管复通术, 6 输精管复通术, 7 皮埋术, 8 皮埋取除术,
9 人工流产 (by geso_mons).
"""
from decimal import Decimal

import pytest

from tests.support import (accumulators, check, line, person, setlinfo, settle, settlement, settlement_results as results)

D = Decimal
MOTHER = dict(brdy="1994-03-01", gend="2")





def birth(amount, matn_type, level=3, **data):
    return settlement([line(amount)], med_type="52", level=level, matn_type=matn_type, **data)


# 002 四、1: "包干结算，包干标准如下：顺产2500元；难产（产钳助产和胎头吸引）3000元；剖宫产5000元；产前检查费1500元；
# 营养补助费2000元（每多一胎多1000元）"; 四、3 "产前检查费、生育营养补助费合并生育医疗费用内报销".
@pytest.mark.parametrize("matn_type, fetuses, bill, packages, personal, surplus", [
    # 顺产 2500 + 产检 1500 + 营养 2000 = 6000; bill 3000 → surplus 3000
    ("1", 1, "3000", "6000.00", "0", "3000.00"),
    # 顺产 6000 against a bill of 7000 → personal 1000
    ("1", 1, "7000", "6000.00", "1000.00", "0"),
    # 难产 3000 + 1500 + 2000 = 6500; bill 6500 → neither
    ("2", 1, "6500", "6500.00", "0", "0"),
    # 剖宫产 5000 + 1500 + 2000 = 8500; bill 12000 → personal 3500
    ("3", 1, "12000", "8500.00", "3500.00", "0"),
    # twins 顺产: 2500 + 1500 + 2000 + 1000 = 7000; bill 4000 → surplus 3000
    ("1", 2, "4000", "7000.00", "0", "3000.00"),
    # triplets 难产: 3000 + 1500 + 2000 + 2×1000 = 8500; bill 10000 → personal 1500
    ("2", 3, "10000", "8500.00", "1500.00", "0"),
    # twins 剖宫产: 5000 + 1500 + 2000 + 1000 = 9500; bill 9000 → surplus 500
    ("3", 2, "9000", "9500.00", "0", "500.00"),
])
def test_delivery_packages_are_paid_whatever_the_bill(matn_type, fetuses, bill, packages, personal, surplus):
    info = settle(person(**MOTHER), birth(bill, matn_type, fetus_cnt=fetuses))
    check(info, hifp_pay=packages, hifob_pay="0", maf_pay="0", psn_part_amt=personal, pkg_surplus_pay=surplus)


@pytest.mark.parametrize("months, package, personal, surplus", [
    (3, "600.00", "400.00", "0"),       # "妊娠4个月以下流产（含人工流产）600元"; bill 1000 → personal 400
    (4, "2000.00", "0", "1000.00"),     # "妊娠4个月（含4个月）以上、7个月以下流产 ... 2000元"; bill 1000 → surplus 1000
    (5, "2000.00", "0", "1000.00"),
    (6, "2000.00", "0", "1000.00"),
])
def test_termination_package_depends_on_the_month_of_pregnancy(months, package, personal, surplus):
    info = settle(person(**MOTHER),
                  settlement([line("1000")], med_type="51", level=2, matn_type="4", geso_mons=months))
    check(info, hifp_pay=package, psn_part_amt=personal, pkg_surplus_pay=surplus)


@pytest.mark.parametrize("weeks, package", [
    (15, "600.00"),   # 3 months (4 weeks a month): 妊娠4个月以下
    (16, "2000.00"),  # 4 months: 4个月（含4个月）以上、7个月以下
    (27, "2000.00"),  # 6 months
    (28, "6000.00"),  # 7 months: paid as a birth, 2500 + 1500 + 2000
])
def test_gestation_may_be_given_in_weeks(weeks, package):
    info = settle(person(**MOTHER), settlement([line("1000")], med_type="51", level=2, matn_type="4", geso_val=weeks))
    check(info, hifp_pay=package)
    assert any(f"gestation {weeks} weeks" in step["calc"] for step in info["setl_proc_info"])


def test_gestation_in_months_wins_over_weeks():
    info = settle(person(**MOTHER), settlement([line("1000")], med_type="51", level=2, matn_type="4",
                                               geso_mons=3, geso_val=30))
    check(info, hifp_pay="600.00")


def test_termination_at_8_months_is_paid_as_a_birth_with_nutrition_and_prenatal_allowances():
    # 四、1 "7个月（含7个月）以上终止妊娠，不论胎儿是否存活，均享受生育医疗费补助和营养补助费"; R8 / 四、3:
    # a birth also carries 产前检查费. No delivery method given → the ordinary birth (顺产) package:
    # 2500 + 1500 + 2000 = 6000; bill 5000 → surplus 1000.
    info = settle(person(**MOTHER), birth("5000", "4", geso_mons=8))
    check(info, hifp_pay="6000.00", psn_part_amt="0", pkg_surplus_pay="1000.00")


def test_caesarean_at_8_months_is_a_caesarean_birth():
    # 5000 + 1500 + 2000 = 8500; bill 9000 → personal 500
    info = settle(person(**MOTHER), birth("9000", "3", geso_mons=8))
    check(info, hifp_pay="8500.00", psn_part_amt="500.00", pkg_surplus_pay="0")


def test_a_male_employee_claims_for_his_non_working_spouse_only_with_the_declaration():
    # 七、3 "配偶未就业承诺书（报销男职工未就业的配偶生育医疗费用时提供）".
    # Without spus_unemp_flag: refused. With it: 顺产 6000 for a bill of 3000 → surplus 3000.
    father = dict(brdy="1992-03-01", gend="1")
    refused = results(person(**father), birth("3000", "1"))[-1]
    assert refused["infcode"] == -1 and "spus_unemp_flag" in refused["err_msg"]
    info = settle(person(**father), birth("3000", "1", spus_unemp_flag="1"))
    check(info, hifp_pay="6000.00", psn_part_amt="0", pkg_surplus_pay="3000.00")


def test_maternity_packages_neither_count_as_admissions_nor_use_the_fund_cap():
    # Packages are separate from the inpatient rules: with the 100000 cap used the delivery is still 6000.
    info = settle(person(**MOTHER), accumulators(2024, ip_pool_paid=D("100000")), birth("3000", "1"))
    check(info, hifp_pay="6000.00", hifob_pay="0", pkg_surplus_pay="3000.00")


# 002 四、1 family planning: "放置宫内节育器（含宫内节育器）450元；摘取宫内节育器150元；输卵管结扎术2000元；输精管结扎术
# 1000元；输卵管复通术2500元；输精管复通术2000元；皮埋术200元；皮埋取除术150元". Bill 1000 each.
@pytest.mark.parametrize("birctrl, gend, package, personal, surplus", [
    ("1", "2", "450.00", "550.00", "0"),
    ("2", "2", "150.00", "850.00", "0"),
    ("3", "2", "2000.00", "0", "1000.00"),
    ("4", "1", "1000.00", "0", "0"),
    ("5", "2", "2500.00", "0", "1500.00"),
    ("6", "1", "2000.00", "0", "1000.00"),
    ("7", "2", "200.00", "800.00", "0"),
    ("8", "2", "150.00", "850.00", "0"),
])
def test_family_planning_packages(birctrl, gend, package, personal, surplus):
    info = settle(person(brdy="1990-01-01", gend=gend),
                  settlement([line("1000")], med_type="53", level=2, birctrl_type=birctrl))
    check(info, hifp_pay=package, psn_part_amt=personal, pkg_surplus_pay=surplus)


@pytest.mark.parametrize("months, package, personal", [
    (2, "600.00", "200.00"),   # 人工流产 under 4 months: 600; bill 800 → personal 200
    (4, "2000.00", "0"),       # 4 to under 7 months: 2000; bill 800 → surplus 1200
])
def test_family_planning_abortion_follows_the_month_of_pregnancy(months, package, personal):
    info = settle(person(**MOTHER),
                  settlement([line("800")], med_type="53", level=2, birctrl_type="9", geso_mons=months))
    check(info, hifp_pay=package, psn_part_amt=personal)


# 002 四、2: "人工授精或试管婴儿技术的，符合计划生育政策，且成功生育前提下，可申请一次且只能申请一次定额补助，补助标准
# 最高3000元". R8: min(bill, 3000), once.
def art(amount, flag="1", day="2024-11-05"):
    return settlement([line(amount)], med_type="51", level=3, matn_type="5", art_birth_flag=flag, day=day)


def test_assisted_reproduction_pays_the_bill_up_to_3000():
    # bill 5000 → 3000; personal 2000
    info = settle(person(**MOTHER), art("5000"))
    check(info, hifp_pay="3000.00", psn_part_amt="2000.00", pkg_surplus_pay="0")


def test_assisted_reproduction_below_3000_pays_the_bill_with_no_surplus():
    # bill 2000 → 2000; nothing to the insured beyond the bill ("补助标准最高3000元")
    info = settle(person(**MOTHER), art("2000"))
    check(info, hifp_pay="2000.00", psn_part_amt="0", pkg_surplus_pay="0")


def test_assisted_reproduction_is_paid_once_only():
    # "可申请一次且只能申请一次": second claim (even a later year) refused.
    rs = results(person(**MOTHER), art("2000", day="2024-03-01"), art("2000", day="2025-03-01"))
    check(setlinfo(rs[0]), hifp_pay="2000.00")
    assert rs[1]["infcode"] == -1 and "once" in rs[1]["err_msg"]


def test_assisted_reproduction_already_claimed_elsewhere_is_refused():
    rs = results(person(**MOTHER), accumulators(2023, art_claimed=True), art("2000"))
    assert rs[-1]["infcode"] == -1 and "once" in rs[-1]["err_msg"]


def test_assisted_reproduction_needs_a_successful_birth():
    # "且成功生育前提下": art_birth_flag 0 → refused.
    rs = results(person(**MOTHER), art("2000", flag="0"))
    assert rs[-1]["infcode"] == -1 and "art_birth_flag" in rs[-1]["err_msg"]
