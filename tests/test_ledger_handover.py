"""Hand-over of people between ledger partitions: `Ledger.export_people` then `Ledger.import_people`.

What moves must come back exactly (Decimal exponents, tuple vs list, the frozen results byte for
byte), leave nothing behind, and change no later result: a ledger that hands a group over and one
that never did answer every event identically.
"""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.exceptions import SettlementRefused
from processors.ledger import Ledger
from schemas.models import PersonData
from schemas.serde import encode
from tests.support import (BOOK, PHARMACY, PSN, accumulators, bind, cancel, credit, filing, hospitals, line, person,
                           run, setlinfo, settlement)
from tests.test_properties import SETTINGS, families, scenarios, step

U, A1, A2, O = "FAMU0001", "FAMA0001", "FAMA0002", PSN
GROUP = [U, A1, A2]
D = Decimal


def _buy(amount: str, day: str, psn_no: str = U) -> dict:
    return settlement([line(amount)], med_type="41", fixmedins_code=PHARMACY, psn_no=psn_no, day=day)


def _held(ledger: Ledger, people) -> str:
    """Everything the ledger holds for these people, as a repr: Decimal exponents, types and tuple
    vs list show. Entries keyed by setl_id or msgid are sorted (an import groups them by person)."""
    own = {a: [(p, getattr(ledger, a)[p]) for p in people if p in getattr(ledger, a)]
           for a in ("persons", "balances", "registrations", "ytd", "history", "bindings")}
    owned = {
        "settlements": sorted((k, v) for k, v in ledger.settlements.items() if v.psn_no in people),
        "by_msgid": sorted((k, v) for k, v in ledger.by_msgid.items() if k[0] in people),
        "answered": sorted((k, v) for k, v in ledger.answered.items() if k[0] in people),
        "credited": sorted(c for c in ledger.credited if c[0] in people),
    }
    return repr((own, owned))


def _only(snapshot: dict, people) -> dict:
    return {"balances": {p: b for p, b in snapshot["balances"].items() if p in people},
            "ytd": {k: t for k, t in snapshot["ytd"].items() if k.split("/")[0] in people}}


def _merged(a: dict, b: dict) -> dict:
    return {k: dict(sorted({**a[k], **b[k]}.items())) for k in a}


def _ok(results: list[dict]) -> None:
    assert all(r["infcode"] == 0 for r in results), [r["err_msg"] for r in results if r["infcode"]]


def _paid(info: dict) -> tuple:
    return (info["acct_pay"], info["acct_mulaid_pay"], info["balc"],
            [(d["psn_no"], d["acct_pay"], d["balc"]) for d in info.get("acct_pay_detl", [])])


# -- 1. a round trip -------------------------------------------------------------------------------


def test_a_family_moves_exactly_and_answers_later_events_as_if_it_had_stayed():
    institutions = hospitals()
    pay1, pay2 = _buy("150", "2024-12-01"), _buy("50", "2024-12-02")
    undo2 = cancel(pay2)
    before_split = institutions + [
        person(U, balc="20"), person(A1, balc="100"), person(A2, balc="60"), person(O, balc="50.00"),
        bind(U, A1, "parent", "2024-11-01"), bind(U, A2, "spouse", "2024-11-01"),
        filing("MXB01", U), accumulators(2024, U, op_pool_paid=D("12.30"), adm_cnt=1),
        credit("2024-12", A2, "5000"),
        pay1,  # own 20; then A2 (60 + 90 credited = 150) before A1 (100): 130 from A2
        pay2,  # own 0; then A1 (100) before A2 (20): 50 from A1
        undo2,  # A1 back to 100
        _buy("30", "2024-12-03", O),
    ]
    chronic = settlement([line("80", kind="service")], med_type="14", dise_codg="MXB01", day="2024-12-04",
                         psn_no=U)
    after_split = [
        _buy("40", "2024-12-05"),  # own 0; A1 (100) before A2 (20): 40 from A1
        cancel(pay1),  # U back to 20, A2 to 150
        chronic,
        pay1,  # a re-send: the stored result
        undo2,  # a re-sent cancel: the stored result
        _buy("10", "2024-12-06", O),
    ]
    reference = Ledger(BOOK)
    results = run(before_split + after_split, reference)
    _ok(results)
    expected = [encode(r) for r in results]

    first = Ledger(BOOK)
    results = run(before_split, first)
    assert [encode(r) for r in results] == expected[:len(before_split)]
    first_pay, second_pay = (setlinfo(r) for r in results[len(institutions) + 9:len(institutions) + 11])
    assert _paid(first_pay) == (D("20.00"), D("130.00"), D("0.00"), [(A2, D("130.00"), D("20.00"))])
    assert _paid(second_pay) == (D("0.00"), D("50.00"), D("0.00"), [(A1, D("50.00"), D("50.00"))])
    views, snapshot, held = {x: first.account(x) for x in GROUP}, first.snapshot(), _held(first, GROUP)
    assert (first.balances[U], first.balances[A1], first.balances[A2]) == (D("0.00"), D("100.00"), D("20.00"))
    assert (str(first.persons[U].balc), str(first.persons[O].balc)) == ("20", "50.00")  # exponents to keep

    data = first.export_people(GROUP)
    for x in GROUP:
        with pytest.raises(SettlementRefused):
            first.account(x)
        assert x not in first.balances
    assert _held(first, GROUP) == _held(Ledger(BOOK), GROUP)  # nothing of theirs is left
    assert first.snapshot() == _only(snapshot, {O}) and O in first.persons
    assert all(k[0] is None for k in first.answered if k[0] != O)  # the institutions' answers stay

    second = Ledger(BOOK)
    _ok(run(institutions, second))
    assert second.import_people(data) == GROUP
    assert _held(second, GROUP) == held
    assert {x: second.account(x) for x in GROUP} == views
    assert second.snapshot() == _only(snapshot, GROUP)
    person_u = PersonData.model_validate(json.loads(data)[0]["persons"])
    assert person_u == second.persons[U] and person_u.model_fields_set == {"psn_no", "brdy", "psn_type", "insutype",
                                                                           "insuplc_admdvs", "balc"}
    again = second.export_people(GROUP)  # deterministic: the same state gives the same bytes
    assert again == data
    second.import_people(again)

    got = [encode(step(second if ev["input"].get("data", ev["input"])["psn_no"] in GROUP else first, ev))
           for ev in after_split]
    assert got == expected[len(before_split):]
    later = [json.loads(r, parse_float=D) for r in got]
    assert _paid(later[0]["output"]["setlinfo"]) == (D("0.00"), D("40.00"), D("0.00"), [(A1, D("40.00"), D("60.00"))])
    assert _paid(later[1]["output"]["setlinfo"]) == (D("-20.00"), D("-130.00"), D("20.00"),
                                                     [(A2, D("-130.00"), D("150.00"))])
    assert got[3] == expected[len(institutions) + 9]  # pay1 re-sent: byte-identical
    assert got[4] == expected[len(institutions) + 11]  # and its cancel
    assert _merged(first.snapshot(), second.snapshot()) == reference.snapshot()
    assert {x: second.account(x) for x in GROUP} == {x: reference.account(x) for x in GROUP}
    assert first.account(O) == reference.account(O)


# -- 2. a hand-over at any point changes no result ---------------------------------------------------


def _psn(ev: dict) -> str | None:
    return None if ev["infno"] == "institution" else ev["input"].get("data", ev["input"])["psn_no"]


def _bound_groups(events: list[dict]) -> list[set[str]]:
    """The people, grouped so that any two a (un)binding names are in one group."""
    groups: list[set[str]] = []
    for ev in events:
        names = {_psn(ev), ev["input"].get("auth_psn_no")} - {None}
        if names:
            joined = [g for g in groups if g & names]
            groups = [g for g in groups if not g & names] + [names.union(*joined)]
    return groups


@st.composite
def handovers(draw) -> tuple[list[dict], int, list[str], set[str]]:
    """(events, split point, export order, moved): a property-test scenario and a family (other people)
    interleaved, with a few more credits; split mostly once the people exist; the people moved are one
    or more of the groups bindings tie."""
    scenario, family = draw(scenarios())[1], draw(families())
    streams = [iter(scenario), iter(family)]
    events = [next(streams[i]) for i in draw(st.permutations([0] * len(scenario) + [1] * len(family)))]
    people = sorted({_psn(ev) for ev in events} - {None})
    for n in range(draw(st.integers(0, 3))):
        month, who = draw(st.sampled_from(["2024-11", "2024-12"])), draw(st.sampled_from(people))
        events.insert(draw(st.integers(0, len(events))), credit(month, who, "4000", msgid=f"HK{n}"))
    at = draw(st.integers(len(events) // 2, len(events)) | st.integers(0, len(events)))
    moved: set[str] = set().union(*draw(st.lists(st.sampled_from(_bound_groups(events)), min_size=1)))
    return events, at, draw(st.permutations(sorted(moved | {"NOBODY"}))), moved


@SETTINGS
@given(handovers())
def test_a_handover_at_any_point_changes_no_result(handover):
    events, at, order, moved = handover
    reference = Ledger(BOOK)
    expected = [encode(r) for r in run(events, reference)]

    old, new = Ledger(BOOK), Ledger(BOOK)
    got = [encode(r) for r in run(events[:at], old)]
    run([ev for ev in events[:at] if _psn(ev) is None], new)
    held = _held(old, moved)
    assert new.import_people(old.export_people(order)) == order
    assert _held(new, moved) == held and _held(old, moved) == _held(Ledger(BOOK), moved)
    for ev in events[at:]:
        answers = {encode(step(ledger, ev)) for ledger in
                   ([old, new] if _psn(ev) is None else [new if _psn(ev) in moved else old])}
        assert len(answers) == 1
        got += answers
    assert got == expected
    assert not set(old.persons) & set(new.persons)
    assert _merged(old.snapshot(), new.snapshot()) == reference.snapshot()
    for p in reference.persons:
        assert (new if p in moved else old).account(p) == reference.account(p)


# -- 3. refusals and people with no state -------------------------------------------------------------


def _family_ledger() -> Ledger:
    ledger = Ledger(BOOK)
    _ok(run(hospitals() + [person(U, balc="20"), person(A1, balc="100"), bind(U, A1, "parent", "2024-11-01"),
                           credit("2024-12", A1, "5000"), _buy("50", "2024-12-01")], ledger))
    return ledger


def test_importing_a_person_already_here_is_refused_and_adds_nothing():
    data = _family_ledger().export_people([U, A1])
    target = Ledger(BOOK)
    _ok(run(hospitals() + [person(A1, balc="7.00")], target))
    before = _held(target, [U, A1]), dict(target.answered), set(target.credited)
    with pytest.raises(ValueError, match=f"state of {A1} is already here"):
        target.import_people(data)
    assert (_held(target, [U, A1]), dict(target.answered), set(target.credited)) == before
    assert target.balances == {A1: D("7.00")}

    fresh = Ledger(BOOK)
    assert fresh.import_people(data) == [U, A1]
    with pytest.raises(ValueError, match=f"state of {A1}, {U} is already here"):
        fresh.import_people(data)


def test_people_with_no_state_export_nothing_and_import_to_nothing():
    ledger = _family_ledger()
    held = _held(ledger, [U, A1]), ledger.snapshot(), dict(ledger.answered)
    data = ledger.export_people(["NOBODY", "NOBODY2", "NOBODY"])
    assert json.loads(data) == [{"psn_no": "NOBODY"}, {"psn_no": "NOBODY2"}]
    assert ledger.import_people(data) == ["NOBODY", "NOBODY2"]
    assert (_held(ledger, [U, A1]), ledger.snapshot(), dict(ledger.answered)) == held
    assert "NOBODY" not in ledger.persons and "NOBODY" not in ledger.balances
