"""Personal accounts, derived by hand from the seed passages (seed 001 六, seed 002 一、2 and 十、1).

Monthly credits: an active member gets 2% of the month's contribution base, of which 0.2% goes to
long-term care (from 2024-11-01; before, the whole 2%); a retiree a fixed 106, or 142 at 70 and over
(from 2024-11-01; the 2022 handbook gives no amount). The account may not pay public health,
fitness, wellness or check-ups: such a line is paid in cash and the account is not touched.
"""
from decimal import Decimal

import pytest

from tests.support import PHARMACY, PSN, credit, hospitals, line, person, run, setlinfo, settlement


def _credit(result) -> dict:
    assert result["infcode"] == 0, result["err_msg"]
    return result["output"]


@pytest.mark.parametrize("base, month, to_account, to_ltc", [
    # 5000 × 2% = 100, of which 5000 × 0.2% = 10 to long-term care
    ("5000", "2024-11", "90.00", "10.00"),
    # 6543.21 × 2% = 130.8642 → 130.86; × 0.2% = 13.08642 → 13.09; 130.86 − 13.09
    ("6543.21", "2024-12", "117.77", "13.09"),
    # 1234.25 × 2% = 24.685 → 24.69 (half up); × 0.2% = 2.4685 → 2.47; 24.69 − 2.47
    ("1234.25", "2025-01", "22.22", "2.47"),
    # before 2024-11-01 (seed 002): the whole 2% to the account
    ("5000", "2024-10", "100.00", "0.00"),
])
def test_an_active_members_credit_is_2_percent_of_the_base_less_the_ltc_share(base, month, to_account, to_ltc):
    out = _credit(run([person(balc="10"), credit(month, contrib_base=base)])[-1])
    assert (out["acct_credit"], out["ltc_credit"]) == (Decimal(to_account), Decimal(to_ltc))
    assert out["balc"] == Decimal("10") + Decimal(to_account) and out["month"] == month


@pytest.mark.parametrize("brdy, month, amount", [
    ("1954-11-02", "2024-11", "106.00"),  # 69 on 2024-11-01
    ("1954-11-01", "2024-11", "142.00"),  # 70 on 2024-11-01: 70周岁及以上
    ("1954-11-02", "2024-12", "142.00"),  # 70 on 2024-12-01
])
def test_a_retirees_credit_is_fixed_by_age_on_the_first_of_the_month(brdy, month, amount):
    out = _credit(run([person(brdy=brdy, retired=True), credit(month)])[-1])
    assert (out["acct_credit"], out["ltc_credit"], out["balc"]) == (Decimal(amount), Decimal("0.00"), Decimal(amount))


def test_credits_refused_with_reasons_and_a_month_is_credited_once(ledger):
    retired_2022 = run([person("R1", retired=True), credit("2024-10", psn_no="R1")], ledger)[-1]
    assert retired_2022["err_msg"].startswith("NO_CREDIT_RULE: yunnan-provincial-2022 gives no fixed monthly credit")
    no_base = run([person("A1"), credit("2024-11", psn_no="A1")], ledger)[-1]
    assert no_base["err_msg"].startswith("MISSING_BASE")
    first = credit("2024-11", psn_no="A1", contrib_base="3000")
    again = credit("2024-11", psn_no="A1", contrib_base="3000")
    results = run([first, first, again], ledger)
    assert results[0] == results[1] and _credit(results[0])["balc"] == Decimal("54.00")
    assert results[2]["err_msg"] == "ALREADY_CREDITED: the account was already credited for 2024-11"
    assert ledger.balances["A1"] == Decimal("54.00")
    bad_month = run([credit("2024-13", psn_no="A1", contrib_base="3000")], ledger)[-1]
    assert bad_month["err_msg"].startswith("BAD_EVENT") and "input.month" in bad_month["err_msg"]
    stranger = run([credit("2024-11", psn_no="NOBODY", contrib_base="1")], ledger)[-1]
    assert stranger["err_msg"].startswith("UNKNOWN_PERSON")


def test_a_retirees_base_is_ignored_with_a_warning():
    result = run([person(brdy="1950-01-01", retired=True), credit("2024-11", contrib_base="9000")])[-1]
    assert _credit(result)["acct_credit"] == Decimal("142.00")
    assert result["warn_msg"] == "contrib_base is ignored: a retiree's credit is a fixed amount"


@pytest.mark.parametrize("category", ["public_health", "fitness", "wellness", "checkup"])
def test_the_account_does_not_pay_a_category_it_may_not_pay(category):
    # Kunming example (seed 001 问题四), a retiree: 400 甲 + 100 乙 drugs at level 1 → fund 332.50, own part 167.50.
    # A 200 line of the category is 全自费 and paid in cash: the account pays only the 167.50.
    bill = settlement([line("400"), line("100", "02"), dict(line("200", "01", "service"), fee_ctgy=category)],
                      acct_used_flag="1", day="2024-11-05")
    info = setlinfo(run(hospitals() + [person(balc="1000", retired=True), bill])[-1])
    assert info["medfee_sumamt"] == Decimal("700.00") and info["fulamt_ownpay_amt"] == Decimal("200.00")
    assert info["hifp_pay"] == Decimal("332.50") and info["psn_part_amt"] == Decimal("367.50")
    assert (info["acct_pay"], info["psn_cash_pay"], info["balc"]) == (Decimal("167.50"), Decimal("200.00"), Decimal("832.50"))


def test_a_purchase_only_of_what_the_account_may_not_pay_is_cash_and_touches_no_account(ledger):
    bill = settlement([dict(line("88", "03", "service"), fee_ctgy="checkup")], med_type="41", fixmedins_code=PHARMACY)
    info = setlinfo(run(hospitals() + [person(balc="500"), bill], ledger)[-1])
    assert (info["acct_pay"], info["psn_cash_pay"], info["balc"]) == (Decimal("0.00"), Decimal("88.00"), Decimal("500.00"))
    assert [m["kind"] for m in ledger.account(PSN)["history"]] == ["set"]  # no debit


def test_the_account_view_lists_every_movement_and_the_totals(ledger):
    bill = settlement([line("400"), line("100", "02")], acct_used_flag="1", day="2024-11-05", msgid="ACC-1")
    events = hospitals() + [person(balc="100", retired=True, brdy="1950-06-15"), credit("2024-11", msgid="ACC-K"), bill]
    results = run(events, ledger)
    setl_id = setlinfo(results[-1])["setl_id"]
    run([{"infno": "2208", "msgid": "ACC-C", "fixmedins_code": bill["fixmedins_code"],
          "input": {"data": {"psn_no": PSN, "omsgid": "ACC-1"}}}], ledger)
    view = ledger.account(PSN)
    # a retiree aged 74: 142 credited; the Kunming bill's own part 167.50 (seed 001 问题四) from the account
    assert view["balc"] == Decimal("242.00")
    assert [(m["day"], m["kind"], m["amount"], m["balc"]) for m in view["history"]] == [
        ("", "set", Decimal("100.00"), Decimal("100.00")),
        ("2024-11-01", "credit", Decimal("142.00"), Decimal("242.00")),
        ("2024-11-05", "debit", Decimal("-167.50"), Decimal("74.50")),
        ("2024-11-05", "restore", Decimal("167.50"), Decimal("242.00")),
    ]
    assert view["history"][2]["ref"] == setl_id and view["history"][3]["ref"].startswith("C")
    assert view["totals"][0]["year"] == 2024 and view["totals"][0]["op_pool_paid"] == Decimal("0.00")  # the cancel gave the fund's 332.50 back


def test_an_account_query_changes_nothing_and_is_answered_afresh_when_asked_again(ledger):
    query = {"infno": "acct_query", "msgid": "Q-1", "input": {"psn_no": PSN}}
    first = run([person(balc="10"), query], ledger)[-1]
    assert first["output"]["balc"] == Decimal("10.00") and ledger.balances[PSN] == Decimal("10")
    second = run([credit("2024-11", contrib_base="1000"), query], ledger)[-1]
    assert second["output"]["balc"] == Decimal("28.00")  # 10 + 1000 × 1.8%: the same msgid, the current state
    assert run([{"infno": "acct_query", "msgid": "Q-2", "input": {"psn_no": "NOBODY"}}], ledger)[-1][
        "err_msg"].startswith("UNKNOWN_PERSON")


# -- contributions (个人缴费) paid from the account: seed 001 七 三是; seed 002 十、1 ②③ and 十、2 (3) --------

GRANDCHILD = "530102201501010055"


def _contributed(*events) -> dict:
    result = run([person(balc="300"), *events])[-1]
    assert result["infcode"] == 0, result["err_msg"]
    return result["output"]


def test_a_relatives_resident_contribution_is_paid_from_the_account_down_to_0_and_the_rest_otherwise():
    from tests.support import contrib
    # 300 in the account, a grandchild's 2025 resident contribution of 380 paid on 2024-12-16 (近亲属, seed 001)
    out = _contributed(contrib(PSN, "380", cntr_psn_no=GRANDCHILD, relation="grandchild"))
    assert (out["acct_pay"], out["psn_cash_pay"], out["balc"]) == (Decimal("300.00"), Decimal("80.00"), Decimal("0.00"))
    assert (out["cntr_psn_no"], out["relation"], out["insutype"], out["year"]) == (GRANDCHILD, "grandchild", "390", 2025)


def test_the_holders_own_large_amount_subsidy_contribution_is_paid_and_shown_in_the_history():
    from processors.ledger import Ledger
    from tests.support import BOOK, contrib
    ledger = Ledger(BOOK)
    run([person(balc="300"), contrib(PSN, "120.50", insutype="330", msgid="N-OWN")], ledger)
    out = ledger.account(PSN)
    assert out["balc"] == Decimal("179.50")
    assert out["history"][-1] == {"day": "2024-12-16", "kind": "contrib", "amount": Decimal("-120.50"), "ref": "N-OWN",
                                  "balc": Decimal("179.50")}


@pytest.mark.parametrize("pay_date, ok", [("2023-06-01", False), ("2024-11-01", True)])
def test_a_siblings_contribution_is_refused_under_the_2022_rules_and_paid_from_2024_11(pay_date, ok):
    from tests.support import contrib
    result = run([person(balc="300"), contrib(PSN, "50", cntr_psn_no=GRANDCHILD, relation="sibling",
                                              pay_date=pay_date)])[-1]
    if ok:
        assert result["output"]["acct_pay"] == Decimal("50.00")
    else:
        assert result["err_msg"].startswith("RELATION_NOT_PERMITTED: sibling is not a relative whose contribution "
                                            "yunnan-provincial-2022 lets the account pay (child, parent, spouse)")


def test_a_contribution_resent_is_paid_once():
    from processors.ledger import Ledger
    from tests.support import BOOK, contrib
    ledger = Ledger(BOOK)
    pay = contrib(PSN, "100", cntr_psn_no=GRANDCHILD, relation="child")
    first, again = run([person(balc="300"), pay, pay], ledger)[-2:]
    assert first == again and ledger.balances[PSN] == Decimal("200.00")


@pytest.mark.parametrize("change, reason", [
    ({"insutype": "310"}, "input.insutype"),  # the employee's own insurance is not paid from the account this way
    ({"relation": "child"}, "input.relation is for a relative's contribution"),
    ({"cntr_psn_no": GRANDCHILD}, "a relative's contribution needs input.relation"),
    ({"cntr_amt": Decimal("0")}, "input.cntr_amt"),
])
def test_a_malformed_contribution_is_invalid_with_its_reason(change, reason):
    from tests.support import contrib
    event = contrib(PSN, "100")
    event["input"].update(change)
    result = run([person(balc="300"), event])[-1]
    assert result["err_msg"].startswith("BAD_EVENT") and reason in result["err_msg"], result["err_msg"]
