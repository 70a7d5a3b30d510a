"""The ledger's contract: clear refusals, effectively-once by msgid, exact reversal, state per natural year."""
from decimal import Decimal

import pytest

from tests.support import (HOSPITAL, PSN, accumulators, cancel, filing, hospitals, institution, line,
                           person, run, setlinfo, settlement)


def _err(result) -> str:
    assert result["infcode"] == -1, result
    assert result["output"] is None
    return result["err_msg"]


def test_unknown_person_and_institution_are_refused_with_a_reason():
    results = run(hospitals() + [settlement([line("100")]), person(),
                                 settlement([line("100")], fixmedins_code="H99999999999")])
    assert _err(results[4]).startswith("UNKNOWN_PERSON")
    assert _err(results[6]).startswith("UNKNOWN_INSTITUTION: institution H99999999999 is unknown")


@pytest.mark.parametrize("data, field, reason", [
    ({"psn_type": "1102"}, "input.psn_type", "psn_type 1102 is not supported"),
    ({"insutype": "390"}, "input.insutype", "resident insurance (390) is not yet supported"),
    ({"brdy": "1960-13-01"}, "input.brdy", "valid date"),
    ({"insuplc_admdvs": "53"}, "input.insuplc_admdvs", "pattern"),
    ({"brdy": "1899-12-31"}, "input.brdy", "a birth date before 1900-01-01 is not plausible"),
    ({"brdy": "2024-02-30"}, "input.brdy", "valid date"),
])
def test_bad_person_records_name_the_field(data, field, reason):
    event = person()
    event["input"].update(data)
    err = _err(run([event])[0])
    assert err.startswith("BAD_EVENT: line 1: " + field) and reason in err


def test_person_of_an_uncovered_region_is_refused():
    event = person()
    event["input"]["insuplc_admdvs"] = "440100"
    assert "440100 is not covered" in _err(run([event])[0])


@pytest.mark.parametrize("mutate, reason", [
    (lambda e: e["input"]["feedetail"][0].update(det_item_fee_sumamt=Decimal("-1")), "input.feedetail[0].det_item_fee_sumamt"),
    (lambda e: e["input"]["feedetail"][0].update(det_item_fee_sumamt=Decimal("1.001")), "no more than 2 decimal places"),
    (lambda e: e["input"]["data"].update(medfee_sumamt=Decimal("99")), "differs from the sum of feedetail 100"),
    (lambda e: e["input"]["data"].pop("psn_no"), "input.data.psn_no: Field required"),
    (lambda e: e["input"].update(feedetail=[]), "input.feedetail: List should have at least 1 item"),
    (lambda e: e["input"]["feedetail"][0].update(chrgitm_lv="04"), "input.feedetail[0].chrgitm_lv"),
    (lambda e: e["input"]["feedetail"][0].update(list_type="food"), "must be drug, service or consumable"),
    (lambda e: e.update(infno="9999"), "infno: '9999' is not one of"),
])
def test_invalid_settlements_are_rejected_naming_the_field(mutate, reason):
    event = settlement([line("100")])
    mutate(event)
    assert reason in _err(run(hospitals() + [person(), event])[-1])


def test_undecodable_line_gets_an_error_result_and_the_run_goes_on(ledger):
    from connectors.files import settle_lines
    from schemas.serde import encode
    lines = [b"{not json", b"[1,2]", b"", encode(person())]
    results = [s.result for s in settle_lines(lines, ledger)]
    assert len(results) == 3
    assert _err(results[0]).startswith("BAD_EVENT: line 1: not JSON")
    assert _err(results[1]) == "BAD_EVENT: line 2: not a JSON object"
    assert results[2]["infcode"] == 0


@pytest.mark.parametrize("med_type, infno, code, reason", [
    ("21", "2207", None, "WRONG_INFNO"),
    ("41", "2207", HOSPITAL[1], "WRONG_INFNO"),
    ("11", "2102", HOSPITAL[1], "WRONG_INFNO"),
    ("99", "2207", None, "UNKNOWN_MED_TYPE"),
])
def test_channel_mismatches_are_refused(med_type, infno, code, reason):
    event = settlement([line("100")], med_type=med_type, infno=infno, fixmedins_code=code)
    assert _err(run(hospitals() + [person(), event])[-1]).startswith(reason)


def test_day_surgery_and_maternity_only_where_opened():
    plain = institution("H53019900001", 3)
    events = [plain, person(), settlement([line("1000")], med_type="28", fixmedins_code="H53019900001"),
              settlement([line("1000")], med_type="52", fixmedins_code="H53019900001", matn_type="1")]
    results = run(events)
    assert _err(results[2]).startswith("DAY_SURGERY_NOT_OPEN")
    assert _err(results[3]).startswith("MATERNITY_NOT_OPEN")


def test_mid_stay_settlement_is_refused_not_guessed():
    event = settlement([line("1000")], med_type="21", mid_setl_flag="1")
    assert _err(run(hospitals() + [person(), event])[-1]).startswith("MID_SETTLEMENT_UNSUPPORTED")


def test_duplicate_request_reemits_the_same_result_and_changes_nothing(ledger):
    s = settlement([line("500")], acct_used_flag="1")
    first = run(hospitals() + [person(balc="1000"), s], ledger)[-1]
    before = ledger.snapshot()
    again = run([s], ledger)[0]
    assert again == first
    assert ledger.snapshot() == before


def test_changed_request_under_a_used_msgid_is_refused(ledger):
    s = settlement([line("500")], msgid="M-SAME")
    run(hospitals() + [person(), s], ledger)
    before = ledger.snapshot()
    changed = settlement([line("600")], msgid="M-SAME")
    assert _err(run([changed], ledger)[0]).startswith("MSGID_REUSED")
    assert ledger.snapshot() == before


def test_refused_request_is_judged_afresh_when_resent(ledger):
    s = settlement([line("500")])
    assert _err(run([s], ledger)[0]).startswith("UNKNOWN_PERSON")
    run(hospitals() + [person()], ledger)
    assert run([s], ledger)[0]["infcode"] == 0


def test_cancel_restores_accumulators_and_balance_exactly(ledger):
    setup = hospitals() + [person(retired=True, brdy="1950-01-01", balc="300")]
    run(setup, ledger)
    ip = settlement([line("20000", kind="service"), line("3000", "02")], med_type="21", level=3, acct_used_flag="1")
    before = ledger.snapshot()
    done = setlinfo(run([ip], ledger)[0])
    assert ledger.totals(PSN, 2024)["adm_cnt"] == 1
    undo = setlinfo(run([cancel(ip)], ledger)[0])
    assert ledger.snapshot() == before
    assert undo["hifp_pay"] == -done["hifp_pay"] and undo["acct_pay"] == -done["acct_pay"]
    assert undo["init_setl_id"] == done["setl_id"] and undo["balc"] == Decimal("300.00")


def test_cancel_twice_unknown_or_with_the_wrong_infno_is_refused(ledger):
    s = settlement([line("500")])
    run(hospitals() + [person(), s], ledger)
    assert _err(run([cancel(s, infno="2305")], ledger)[0]).startswith("WRONG_INFNO")
    assert run([cancel(s)], ledger)[0]["infcode"] == 0
    assert _err(run([cancel(s)], ledger)[0]).startswith("ALREADY_CANCELLED")
    ghost = settlement([line("1")], msgid="NEVER-SENT")
    assert _err(run([cancel(ghost)], ledger)[0]).startswith("UNKNOWN_SETTLEMENT")


def test_reversal_2601_names_the_original_msgid_and_infno(ledger):
    s = settlement([line("500")])
    done = setlinfo(run(hospitals() + [person(), s], ledger)[-1])
    reversal = {"infno": "2601", "msgid": "R1", "input": {"data": {"psn_no": PSN, "omsgid": s["msgid"], "oinfno": "2207"}}}
    assert setlinfo(run([reversal], ledger)[0])["init_setl_id"] == done["setl_id"]
    missing = {"infno": "2601", "msgid": "R2", "input": {"data": {"psn_no": PSN, "omsgid": s["msgid"]}}}
    assert "oinfno" in _err(run([missing], ledger)[0])


def test_cancel_in_january_restores_the_december_totals(ledger):
    dec = settlement([line("1000")], day="2024-12-30")
    run(hospitals() + [person(), dec, settlement([line("1000")], day="2025-01-02")], ledger)
    dec_totals = ledger.totals(PSN, 2024)
    assert dec_totals["op_pool_paid"] > 0
    run([cancel(dec)], ledger)
    assert ledger.totals(PSN, 2024)["op_pool_paid"] == 0
    assert ledger.totals(PSN, 2025)["op_pool_paid"] > 0


def test_account_pays_the_personal_part_up_to_its_balance():
    results = run(hospitals() + [person(balc="50"), settlement([line("500")], acct_used_flag="1"),
                                 settlement([line("500")], acct_used_flag="1")])
    first, second = setlinfo(results[-2]), setlinfo(results[-1])
    assert (first["acct_pay"], first["balc"]) == (Decimal("50.00"), Decimal("0.00"))
    assert first["psn_cash_pay"] == first["psn_part_amt"] - Decimal("50")
    assert (second["acct_pay"], second["balc"]) == (Decimal("0.00"), Decimal("0.00"))


def test_pharmacy_uses_the_account_by_default_and_outpatient_pooling_only_when_told():
    results = run(hospitals() + [person(balc="40"), settlement([line("30")], med_type="41"),
                                 settlement([line("30")], acct_used_flag="0")])
    assert setlinfo(results[-2])["acct_pay"] == Decimal("30.00")
    assert setlinfo(results[-1])["acct_pay"] == Decimal("0.00")


def test_disease_filing_accepts_code_or_seed_name_and_refuses_others():
    results = run([person(), filing("糖尿病"), filing("TSB01"), filing("感冒")])
    assert results[1]["output"]["opsp_dise_code"] == "MXB16"
    assert results[2]["output"]["opsp_dise_name"] == "恶性肿瘤"
    assert _err(results[3]).startswith("UNKNOWN_DISEASE")


@pytest.mark.parametrize("alias, code", [("类风湿性关节炎", "MXB18"), ("脑血管意外", "MXB09"),
                                         ("再生障碍性贫血", "TSB05"), ("重性精神病", "TSB11")])
def test_a_disease_is_also_found_by_its_name_without_the_bracketed_part(alias, code):
    result = run([person(), filing(alias)])[-1]
    assert result["infcode"] == 0 and result["output"]["opsp_dise_code"] == code
    assert result["output"]["opsp_dise_name"].startswith(alias + "（")  # answered with the seed's full name


def test_filing_is_honoured_only_from_its_start_date():
    events = hospitals() + [person(), filing("MXB16", begndate="2024-11-10"),
                            settlement([line("500")], med_type="14", dise_codg="MXB16", day="2024-11-09"),
                            settlement([line("500")], med_type="14", dise_codg="MXB16", day="2024-11-10")]
    results = run(events)
    assert setlinfo(results[-2])["benefit"] == "general_outpatient"
    assert "not registered on 2024-11-09" in results[-2]["warn_msg"]
    assert setlinfo(results[-1])["benefit"] == "chronic_outpatient"


def test_imported_totals_add_to_the_year_and_are_used(ledger):
    run(hospitals() + [person(), accumulators(2024, adm_cnt=2, ip_pool_paid=Decimal("1000"))], ledger)
    info = setlinfo(run([settlement([line("1000", kind="service")], med_type="21", level=3)], ledger)[0])
    assert info["act_pay_dedc"] == Decimal("0.00")  # third admission: no deductible (002 二、14)
    assert ledger.totals(PSN, 2024)["adm_cnt"] == 3


def test_every_result_records_the_policy_used_and_its_derivation():
    info = setlinfo(run(hospitals() + [person(), settlement([line("500")], day="2024-10-31")])[-1])
    assert info["policy_id"] == "yunnan-provincial-2022"
    assert [s["key"] for s in info["setl_proc_info"]] == ["general_outpatient.deductible",
                                                          "general_outpatient.ratio_active"]
    assert info["setl_proc_info"][-1]["calc"] == "(500-30)×60%=282"


def test_only_the_settling_institution_can_cancel(ledger):
    s = settlement([line("500")], level=1)
    run(hospitals() + [person(), s], ledger)
    foreign = cancel(s)
    foreign["fixmedins_code"] = HOSPITAL[3]
    assert _err(run([foreign], ledger)[0]).startswith("WRONG_INSTITUTION")
    assert run([cancel(s)], ledger)[0]["infcode"] == 0


def test_cancelled_assisted_reproduction_keeps_a_claim_imported_from_elsewhere(ledger):
    art = settlement([line("5000", kind="service")], med_type="51", level=3, matn_type="5", art_birth_flag="1")
    run(hospitals() + [person(gend="2"), art, accumulators(2024, art_claimed=True)], ledger)
    run([cancel(art)], ledger)
    again = settlement([line("5000", kind="service")], med_type="51", level=3, matn_type="5", art_birth_flag="1")
    assert _err(run([again], ledger)[0]).startswith("ART_ALREADY_CLAIMED")


def test_person_upsert_sets_the_balance_only_when_it_gives_one(ledger):
    run(hospitals() + [person(balc="100"), settlement([line("50")], acct_used_flag="1")], ledger)
    assert ledger.balances[PSN] == Decimal("68.00")  # (50-20)×60% = 18 fund; 32 from the account: 100-32
    assert run([person(retired=True)], ledger)[0]["output"]["balc"] == Decimal("68.00")
    assert run([person(balc="500")], ledger)[0]["output"]["balc"] == Decimal("500.00")


def test_a_person_born_after_the_settlement_date_is_refused_and_nothing_changes(ledger):
    born_later = person(brdy="9999-12-31", balc="100")
    results = run(hospitals() + [born_later, settlement([line("100")], acct_used_flag="1", day="2024-11-05")], ledger)
    assert _err(results[-1]).startswith("BAD_BIRTH_DATE: the person's birth date 9999-12-31 is after the "
                                        "settlement date 2024-11-05")
    assert ledger.snapshot()["balances"][PSN] == Decimal("100") and ledger.snapshot()["ytd"] == {}
    born_that_day = person(brdy="2024-11-05")
    assert run([born_that_day, settlement([line("100")], day="2024-11-05")], ledger)[-1]["infcode"] == 0


def test_a_msgid_is_unique_per_person_and_ids_never_collide(ledger):
    """Two people's requests under one msgid are two requests (the streaming service cannot see other
    partitions' msgids, so offline keeps the same scope); their setl_ids differ, so clearing keeps both."""
    a, b = "530102195001010011", "530102195001010029"
    first = settlement([line("100")], psn_no=a, msgid="SAME-1")
    other = settlement([line("200")], psn_no=b, msgid="SAME-1")
    results = run(hospitals() + [person(a), person(b), first, other, first, dict(other, opter_name="x")], ledger)
    one, two = setlinfo(results[-4]), setlinfo(results[-3])
    assert one["setl_id"] != two["setl_id"] and len(one["setl_id"]) == len(two["setl_id"]) == 29
    assert one["medins_setl_id"] == two["medins_setl_id"] == "SAME-1"
    assert results[-2] == results[-4]  # the same request again: the same answer
    assert _err(results[-1]).startswith("MSGID_REUSED")  # a changed request of the same person: refused
    undo = cancel(first, msgid="SAME-C")
    undo_b = cancel(other, msgid="SAME-C")
    c1, c2 = (setlinfo(r) for r in run([undo, undo_b], ledger))
    assert (c1["init_setl_id"], c2["init_setl_id"]) == (one["setl_id"], two["setl_id"])
    assert c1["setl_id"] != c2["setl_id"] and {c1["setl_id"][0], c2["setl_id"][0]} == {"C"}


def test_settlement_ids_read_their_pair_unambiguously():
    from processors.ids import settlement_id
    assert settlement_id("S", "12", "3") != settlement_id("S", "1", "23")
    assert settlement_id("S", "A", "M") == settlement_id("S", "A", "M") != settlement_id("C", "A", "M")


def test_answers_older_than_the_window_keep_only_their_fingerprint_and_are_never_settled_again():
    from processors.ledger import Ledger
    from tests.support import BOOK
    ledger = Ledger(BOOK, answer_days=30)
    jan = settlement([line("500")], day="2024-01-05", acct_used_flag="1", msgid="M-JAN")
    feb = settlement([line("200")], day="2024-02-04", msgid="M-FEB")  # 30 days after: still held
    mar = settlement([line("100")], day="2024-03-05", msgid="M-MAR")  # 60 days after jan, 30 after feb
    first = run(hospitals() + [person(balc="1000"), jan, feb], ledger)
    assert run([jan], ledger)[0] == first[-2]  # inside the window: the stored result
    run([mar], ledger)
    before = (ledger.snapshot(), len(ledger.settlements))
    expired = _err(run([jan], ledger)[0])
    assert expired.startswith("ANSWER_EXPIRED: msgid M-JAN was answered more than 30 days (of event time)")
    assert _err(run([cancel(jan)], ledger)[0]).startswith("ANSWER_EXPIRED: settlement ")
    assert _err(run([settlement([line("501")], day="2024-01-05", msgid="M-JAN")], ledger)[0]).startswith("MSGID_REUSED")
    assert run([feb], ledger)[0] == first[-1]  # exactly 30 days behind the latest: kept
    assert (ledger.snapshot(), len(ledger.settlements)) == before  # nothing was paid twice or restored
    assert ledger.answered[PSN, "M-JAN"][2] is None and ledger.answered[PSN, "M-FEB"][2] is not None
    assert run([person(balc="1000")], ledger)[0]["infcode"] == 0  # reference data never expires


def test_the_window_goes_with_a_person_handed_to_another_ledger():
    from processors.ledger import Ledger
    from tests.support import BOOK
    old, new = Ledger(BOOK, answer_days=30), Ledger(BOOK, answer_days=30)
    jan = settlement([line("500")], day="2024-01-05", msgid="M-JAN2")
    apr = settlement([line("100")], day="2024-04-05", msgid="M-APR2")
    run(hospitals(), new)
    results = run(hospitals() + [person(), jan, apr], old)
    new.import_people(old.export_people([PSN]))
    assert _err(run([jan], new)[0]).startswith("ANSWER_EXPIRED")
    assert run([apr], new)[0] == results[-1]
    may = settlement([line("100")], day="2024-05-20", msgid="M-MAY2")
    run([may], new)
    assert _err(run([apr], new)[0]).startswith("ANSWER_EXPIRED")  # the moved queue goes on expiring
