"""Seed 001 问题四: the Kunming worked example, 500 yuan for a retiree, at each level."""
from decimal import Decimal

import pytest

from tests.support import hospitals, line, person, run, setlinfo, settlement


@pytest.mark.parametrize("level, hifp, personal", [(1, "332.50", "167.50"), (2, "295.75", "204.25"), (3, "261.00", "239.00")])
def test_kunming_worked_example(level, hifp, personal):
    # 001: "退休参保人员张某某，普通门诊医疗费用500元，其中，医保目录甲类药品费用400元，乙类药品费用100元"
    # "332.5【(500元-起付标准20元-先行自付费用5元)*70%=332.5元】" ... "295.75" ... "261"
    results = run(hospitals() + [person(retired=True), settlement([line("400"), line("100", "02")], level=level)])
    info = setlinfo(results[-1])
    assert info["hifp_pay"] == Decimal(hifp)
    assert info["psn_part_amt"] == Decimal(personal)
    assert info["preselfpay_amt"] == Decimal("5.00")
