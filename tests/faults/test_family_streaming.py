"""Guarantee: family mutual aid in the streaming service debits every account of a payment together,
once, even while ledger groups move between partitions, and a kill -9 of one of two workers during a
burst of family payments loses and doubles nothing.

How the tests try to break it, on the real embedded broker (4 partitions):
- families spread over the partitions; in the middle of a burst of their payments, binds that merge
  two groups living on different partitions, so payments are parked, forwarded and released around
  the hand-over. The merging binds take effect in December and the burst is in November, so every
  November result is fixed by each person's own order, and must equal `yibao settle` byte for byte;
  December probes afterwards draw on the merged groups and must equal it too.
- two users sharing one authorizer pay in an interleaved burst worth more than all three accounts
  hold: the authorizer must end at exactly 0, never below, and each payment must split exactly.
"""
from __future__ import annotations

import json
import signal
from decimal import Decimal

from schemas.serde import encode
from tests.faults.test_two_workers import _ready
from streams import codec, topics
from tests.integration.harness import offline, produce, read_all, send, wait_for_results
from tests.support import PHARMACY, bind, hospitals, line, person, settlement

JSON_HL = [("content-type", b"application/json")]


def _buy(psn_no: str, amount: int, msgid: str, day: str = "2024-11-05") -> dict:
    return settlement([line(str(amount))], med_type="41", fixmedins_code=PHARMACY, psn_no=psn_no, day=day, msgid=msgid)


def _families(tag: str, n: int, rounds: int):
    """(setup, binds, burst, probes, shared): n families, each two user/authorizer pairs merged mid-burst,
    and two users sharing a small authorizer."""
    setup, binds, burst, probes, shared = [], [], [], [], []
    for k in range(n):
        u1, a1, u2, a2, s1, s2, b = (f"{tag}{k:03d}{r}" for r in "UAVBSTC")
        setup += [person(u1, balc="20"), person(a1, balc="5000"), person(u2, balc="20"), person(a2, balc="5000"),
                  person(s1, balc="30"), person(s2, balc="30"), person(b, balc="300")]
        binds += [bind(u1, a1, "spouse", "2024-10-01"), bind(u2, a2, "spouse", "2024-10-01"),
                  bind(s1, b, "child", "2024-10-01"), bind(s2, b, "child", "2024-10-01")]
        for i in range(rounds):
            burst += [_buy(u1, 10 + (7 * i + k) % 50, f"{tag}{k:03d}U{i:03d}"),
                      _buy(u2, 10 + (11 * i + k) % 50, f"{tag}{k:03d}V{i:03d}")]
            if i < 10:
                shared += [_buy(s1, 40, f"{tag}{k:03d}S{i:03d}"), _buy(s2, 40, f"{tag}{k:03d}T{i:03d}")]
            if i == rounds // 2:  # merges {u2, a2} into {u1, a1}, and both into {s1, s2, b}, in December
                burst += [bind(u2, a1, "child", "2024-12-01", msgid=f"{tag}{k:03d}M1"),
                          bind(s1, a1, "child", "2024-12-01", msgid=f"{tag}{k:03d}M2")]
        probes += [_buy(p, 500, f"{tag}{k:03d}P{p[-1]}", day="2024-12-10") for p in (u1, u2, s1, s2)]
    return setup, binds, burst, probes, shared


def _records(events: list[dict]) -> list:
    return [("insured.commands" if e["infno"].startswith("acct_") else "settle.requests",
             e["input"].get("data", e["input"])["psn_no"].encode(), encode(e), JSON_HL) for e in events]


def _check_shared(seen: dict, shared: list[dict]) -> None:
    """Each shared-authorizer payment splits exactly and never overdraws; every authorizer ends at 0."""
    drawn: dict[str, Decimal] = {}
    for ev in shared:
        [value] = seen[ev["msgid"]]
        info = json.loads(value, parse_float=Decimal)["output"]["setlinfo"]
        assert info["acct_pay"] + info["acct_mulaid_pay"] + info["psn_cash_pay"] + info["fund_pay_sumamt"] \
            == info["medfee_sumamt"]
        for row in info.get("acct_pay_detl", []):
            assert row["balc"] >= 0
            drawn[row["psn_no"]] = drawn.get(row["psn_no"], Decimal(0)) + row["acct_pay"]
    assert drawn and set(drawn.values()) == {Decimal("300.00")}  # each shared authorizer gave all it had, no more


def _run(broker, tmp_path, workers, kill: bool, tag: str, n: int, rounds: int) -> None:
    setup, binds, burst, probes, shared = _families(tag, n, rounds)
    send(broker.bootstrap, hospitals() + setup, tmp_path, timeout=90)
    got = send(broker.bootstrap, binds, tmp_path, timeout=90)
    assert all(json.loads(got[b["msgid"]])["infcode"] == 0 for b in binds), got
    events = [e for pair in zip(burst, shared + [None] * len(burst)) for e in pair if e is not None]
    msgids = [e["msgid"] for e in events]
    produce(broker.bootstrap, _records(events))
    if kill:
        seen = wait_for_results(broker.bootstrap, msgids, len(events) // 4, timeout=120, idle=0.2, workers=workers)
        assert sum(m in seen for m in msgids) < len(events), "answered before a worker could be killed"
        workers[0].signal(signal.SIGKILL)
        assert workers[0].wait(60) == -signal.SIGKILL
        workers = workers[1:]
    seen = wait_for_results(broker.bootstrap, msgids, len(events), timeout=240, idle=0.2, workers=workers)
    assert all(w.proc.poll() is None for w in workers), workers[-1].log()[-3000:]
    counts = [len(seen.get(m, ())) for m in msgids]
    assert counts == [1] * len(events), f"{counts.count(0)} unanswered, {sum(c > 1 for c in counts)} answered twice differently"

    # November: fixed by each person's own order, so equal to the offline run of the same file
    ordered = [e for e in events if e not in shared]
    want = offline(hospitals() + setup + binds + ordered)[-len(ordered):]
    wrong = [e["msgid"] for e, w in zip(ordered, want) if seen[e["msgid"]] != {w}]
    assert wrong == [], f"{len(wrong)} results differ from offline, e.g. {wrong[:4]}"
    _check_shared(seen, shared)
    # December: the merged groups draw together; balances everywhere equal the offline run. One at a
    # time: two members' payments drawing on one account are ordered only by their arrival.
    got = {}
    for probe in probes:
        got.update(send(broker.bootstrap, [probe], tmp_path))
    want = offline(hospitals() + setup + binds + events + probes)[-len(probes):]
    assert [got.get(p["msgid"]) for p in probes] == want
    assert any(json.loads(w)["output"]["setlinfo"].get("acct_pay_detl") for w in want)
    kinds = [codec.decode_record("ledger_op", r.value)["kind"] for r in read_all(broker.bootstrap, topics.LEDGER_OPS, 0.5)]
    assert kinds.count("import") >= n  # groups did move between partitions (3 in 4 merges cross them)
    print(f"\n{len(events)} family payments and merges ({kinds.count('import')} hand-overs), {len(probes)} probes: "
          "equal offline")


def test_merges_in_the_middle_of_a_burst_of_family_payments_settle_as_offline(broker, spawn, tmp_path):
    w = spawn(broker.bootstrap)
    w.wait_started()
    _run(broker, tmp_path, (w,), kill=False, tag="FAM1", n=6, rounds=30)
    assert w.stop() == 0, w.log()[-3000:]


def test_kill_9_of_one_of_two_workers_during_family_payments_loses_and_doubles_nothing(broker, spawn, tmp_path):
    first = spawn(broker.bootstrap)
    first.wait_started()
    send(broker.bootstrap, hospitals(), tmp_path, timeout=90)
    second = spawn(broker.bootstrap)
    second.wait_started()
    _ready(second)
    _run(broker, tmp_path, (first, second), kill=True, tag="FAM2", n=12, rounds=60)
    assert second.stop() == 0, second.log()[-3000:]
