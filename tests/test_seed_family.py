"""Family mutual aid (个人账户家庭共济), derived by hand from the seed passages.

Seed 002 十、2 (5): the user's own account first, down to 0; then the authorizers' accounts, the
highest balance first (re-sorted for every payment); what is left is cash. Relations: seed 002 十、2
(2) parents, spouse, children (the 2022 rule set); seed 001 七 近亲属 from 2024-11-01. Seed 000:
the authorizer is an employee insured in Yunnan. Equal balances: lower psn_no first (no seed rule).
The bills are pharmacy purchases without pooling (med_type 41, 2102), so the personal part is the
whole bill and the arithmetic is the drawing alone.
"""
import shutil
from decimal import Decimal

import pytest

from processors.ledger import Ledger
from processors.policy import POLICY_ROOT, load_policies
from tests.support import PHARMACY, bind, cancel, credit, hospitals, line, person, run, setlinfo, settlement, unbind

U, A1, A2, A3 = "FAMU0001", "FAMA0001", "FAMA0002", "FAMA0003"


def _buy(amount: str, day: str = "2024-12-01", psn_no: str = U, **kw) -> dict:
    return settlement([line(amount)], med_type="41", fixmedins_code=PHARMACY, psn_no=psn_no, day=day, **kw)


def _family(ledger, user_balc: str, *authorizers: tuple[str, str], relation: str = "parent",
            begndate: str = "2024-11-01") -> None:
    events = hospitals() + [person(U, balc=user_balc)]
    for psn_no, balc in authorizers:
        events += [person(psn_no, balc=balc), bind(U, psn_no, relation, begndate)]
    results = run(events, ledger)
    assert all(r["infcode"] == 0 for r in results), [r["err_msg"] for r in results if r["infcode"]]


def _paid(info: dict) -> tuple:
    return (info["acct_pay"], info["acct_mulaid_pay"], info["psn_cash_pay"],
            [(d["psn_no"], d["acct_pay"], d["balc"]) for d in info.get("acct_pay_detl", [])])


D = Decimal


def test_own_account_covers_all_and_no_authorizer_is_touched(ledger):
    _family(ledger, "100", (A1, "500"))
    info = setlinfo(run([_buy("60")], ledger)[-1])
    assert _paid(info) == (D("60.00"), D("0.00"), D("0.00"), []) and "acct_pay_detl" not in info
    assert ledger.balances[A1] == D("500")


def test_own_account_to_zero_then_one_authorizer(ledger):
    _family(ledger, "50", (A1, "500"))
    info = setlinfo(run([_buy("120")], ledger)[-1])
    assert _paid(info) == (D("50.00"), D("70.00"), D("0.00"), [(A1, D("70.00"), D("430.00"))])
    assert info["balc"] == D("0.00") and info["psn_part_amt"] == D("120.00")


def test_several_authorizers_highest_balance_first_each_to_zero(ledger):
    # own 10; then A2 (100), A3 (50), A1 (30): 170 = 10 + 100 + 50 + 10
    _family(ledger, "10", (A1, "30"), (A2, "100"), (A3, "50"))
    info = setlinfo(run([_buy("170")], ledger)[-1])
    assert _paid(info) == (D("10.00"), D("160.00"), D("0.00"),
                           [(A2, D("100.00"), D("0.00")), (A3, D("50.00"), D("0.00")), (A1, D("10.00"), D("20.00"))])


def test_all_short_the_rest_is_cash(ledger):
    _family(ledger, "0", (A1, "20"), (A2, "5"))
    info = setlinfo(run([_buy("100")], ledger)[-1])
    assert _paid(info) == (D("0.00"), D("25.00"), D("75.00"), [(A1, D("20.00"), D("0.00")), (A2, D("5.00"), D("0.00"))])


def test_equal_balances_the_lower_psn_no_pays_first(ledger):
    _family(ledger, "0", (A2, "40"), (A1, "40"))
    info = setlinfo(run([_buy("50")], ledger)[-1])
    assert _paid(info)[3] == [(A1, D("40.00"), D("0.00")), (A2, D("10.00"), D("30.00"))]


def test_the_order_is_re_sorted_for_every_payment(ledger):
    _family(ledger, "0", (A1, "100"), (A2, "80"))
    first, second = (setlinfo(r) for r in run([_buy("30"), _buy("75", day="2024-12-02")], ledger))
    assert _paid(first)[3] == [(A1, D("30.00"), D("70.00"))]
    assert _paid(second)[3] == [(A2, D("75.00"), D("5.00"))]  # 80 > 70 now


def test_an_unbound_authorizer_pays_until_the_day_before_the_unbinding(ledger):
    _family(ledger, "0", (A1, "100"))
    assert run([unbind(U, A1, "2024-12-10")], ledger)[-1]["infcode"] == 0
    before, on = (setlinfo(r) for r in run([_buy("10", day="2024-12-09"), _buy("10", day="2024-12-10")], ledger))
    assert _paid(before)[1] == D("10.00") and _paid(on) == (D("0.00"), D("0.00"), D("10.00"), [])
    assert run([unbind(U, A1, "2024-12-20")], ledger)[-1]["err_msg"].startswith("NOT_BOUND")


def test_an_authorizer_bound_twice_on_one_day_is_drawn_once_never_below_zero(ledger):
    # unbound from 2024-12-10, bound again from 2024-11-01: both bindings are in force on 12-05; the
    # one account pays at most its balance (found by test_groups' property test: it went to -1.00)
    _family(ledger, "0", (A1, "30"))
    assert [r["infcode"] for r in run([unbind(U, A1, "2024-12-10"), bind(U, A1, "parent", "2024-11-01")], ledger)] == [0, 0]
    info = setlinfo(run([_buy("50", day="2024-12-05")], ledger)[-1])
    assert _paid(info) == (D("0.00"), D("30.00"), D("20.00"), [(A1, D("30.00"), D("0.00"))])
    assert ledger.balances[A1] == D("0")


def test_a_binding_pays_only_from_its_start(ledger):
    _family(ledger, "0", (A1, "100"), begndate="2024-12-05")
    early, late = (setlinfo(r) for r in run([_buy("10", day="2024-12-04"), _buy("10", day="2024-12-05")], ledger))
    assert (early["acct_mulaid_pay"], late["acct_mulaid_pay"]) == (D("0.00"), D("10.00"))


def test_a_sibling_is_not_drawn_in_2023_but_is_in_2025(ledger):
    _family(ledger, "0", (A1, "100"), relation="sibling", begndate="2023-06-01")
    in_2023, in_2025 = (setlinfo(r) for r in run([_buy("10", day="2023-07-01"), _buy("10", day="2025-01-05")], ledger))
    assert _paid(in_2023) == (D("0.00"), D("0.00"), D("10.00"), [])  # 2022 rule set: parents, spouse, children
    assert _paid(in_2025)[1] == D("10.00")  # from 2024-11-01: 近亲属
    assert in_2023["policy_id"] == "yunnan-provincial-2022" and in_2025["policy_id"] == "yunnan-2024-11"


def test_a_spouse_is_drawn_under_the_2022_rules(ledger):
    _family(ledger, "0", (A1, "100"), relation="spouse", begndate="2024-01-01")
    assert setlinfo(run([_buy("10", day="2024-10-15")], ledger)[-1])["acct_mulaid_pay"] == D("10.00")


def test_what_the_account_may_not_pay_is_not_drawn_from_authorizers_either(ledger):
    _family(ledger, "0", (A1, "500"))
    bill = settlement([line("50"), dict(line("30", "03", "service"), fee_ctgy="checkup")], med_type="41",
                      fixmedins_code=PHARMACY, psn_no=U, day="2024-12-01")
    assert _paid(setlinfo(run([bill], ledger)[-1])) == (D("0.00"), D("50.00"), D("30.00"), [(A1, D("50.00"), D("450.00"))])


def test_no_drawing_when_the_account_is_not_used(ledger):
    _family(ledger, "0", (A1, "500"))
    info = setlinfo(run([_buy("50", acct_used_flag="0")], ledger)[-1])
    assert _paid(info) == (D("0.00"), D("0.00"), D("50.00"), [])


def test_a_cancel_restores_each_account_exactly_even_after_balances_changed(ledger):
    _family(ledger, "20", (A1, "100"), (A2, "60"))
    paid = _buy("150", msgid="FAM-PAY")
    info = setlinfo(run([paid], ledger)[-1])
    assert _paid(info)[3] == [(A1, D("100.00"), D("0.00")), (A2, D("30.00"), D("30.00"))]
    run([credit("2024-12", A2, "5000"), _buy("25", day="2024-12-03", psn_no=A2)], ledger)  # A2: 30 + 90 - 25 = 95
    undo = cancel(paid, msgid="FAM-UNDO")
    back = setlinfo(run([undo], ledger)[-1])
    assert (ledger.balances[U], ledger.balances[A1], ledger.balances[A2]) == (D("20"), D("100"), D("125.00"))
    assert back["acct_mulaid_pay"] == D("-130.00") and back["acct_pay"] == D("-20.00")
    assert [(d["psn_no"], d["acct_pay"], d["balc"]) for d in back["acct_pay_detl"]] == [
        (A1, D("-100.00"), D("100.00")), (A2, D("-30.00"), D("125.00"))]
    assert run([undo], ledger)[-1] == run([undo], ledger)[-1]  # re-sent: the same answer
    assert ledger.balances[A2] == D("125.00")  # and nothing moved
    kinds = [(m["kind"], m["amount"]) for m in ledger.account(A1)["history"]]
    assert kinds == [("set", D("100.00")), ("mulaid", D("-100.00")), ("restore", D("100.00"))]


@pytest.mark.parametrize("event, reason", [
    (lambda: bind(U, "NOBODY", "parent", "2024-11-01"), "UNKNOWN_AUTHORIZER"),
    (lambda: bind(U, A1, "parent", "2024-11-01"), None),  # the same binding again: idempotent
    (lambda: bind(U, A1, "child", "2024-11-01"), "ALREADY_BOUND: already bound as parent since 2024-11-01"),
    (lambda: bind(U, U, "parent", "2024-11-01"), "BAD_EVENT: line 1: a person cannot bind their own account"),
    (lambda: bind(U, A1, "cousin", "2024-11-01"), "BAD_EVENT: line 1: input.relation"),
    (lambda: {"infno": "acct_bind", "msgid": "B-NODATE", "input": {"psn_no": U, "auth_psn_no": A1}},
     "BAD_EVENT: line 1: acct_bind needs input.relation and input.begndate"),
    (lambda: unbind(U, A1, "2024-10-01"), "UNBIND_BEFORE_BIND"),
])
def test_binding_is_validated_with_reasons(ledger, event, reason):
    _family(ledger, "0", (A1, "10"))
    result = run([event()], ledger)[-1]
    if reason is None:
        assert result["infcode"] == 0 and len(ledger.bindings[U]) == 1
    else:
        assert result["err_msg"].startswith(reason), result["err_msg"]


def test_an_authorizer_insured_outside_yunnan_is_refused(tmp_path):
    """A second region (a copy of Yunnan's files for prefix 14): its people are valid persons, but
    seed 000 makes only employees insured in Yunnan authorizers."""
    root = tmp_path / "policies"
    shutil.copytree(POLICY_ROOT, root)
    other = root / "elsewhere"
    shutil.copytree(root / "yunnan", other)
    card = (other / "region.yaml").read_text(encoding="utf-8")
    card = card.replace("region: yunnan", "region: elsewhere").replace('["53"]', '["14"]')
    card = card.replace("yunnan-provincial-2022", "elsewhere-2022").replace("yunnan-2024-11", "elsewhere-2024-11")
    (other / "region.yaml").write_text(card, encoding="utf-8")
    ledger = Ledger(load_policies(root))
    outsider = person(A1, balc="100")
    outsider["input"]["insuplc_admdvs"] = "140100"
    results = run(hospitals() + [person(U), outsider, bind(U, A1, "parent", "2024-11-01")], ledger)
    assert results[-2]["infcode"] == 0  # a valid person
    assert results[-1]["err_msg"] == ("AUTHORIZER_NOT_IN_PROVINCE: an authorizer must be an employee insured in 53; "
                                      "this one is insured in 140100")


def test_the_account_view_shows_bindings_both_ways(ledger):
    _family(ledger, "0", (A1, "10"))
    assert ledger.account(U)["bindings"] == [{"auth_psn_no": A1, "relation": "parent", "begndate": "2024-11-01"}]
    assert ledger.account(A1)["authorizes"] == [{"psn_no": U, "relation": "parent", "begndate": "2024-11-01"}]
    run([unbind(U, A1, "2025-01-01")], ledger)
    assert ledger.account(U)["bindings"][0]["enddate"] == "2025-01-01"
