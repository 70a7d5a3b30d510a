"""Guarantee: the clearing agent's state recovers exactly after kill -9, the way the ledger's does (it
is replayed from clearing.entries, no Faust table): a worker killed in a burst of settlements and
another killed right after a month's close leave statements equal to the offline run's, and the
month comes back closed (closing it again writes no second statement)."""
import signal

from connectors.files import settle_lines
from processors.clearing import SUMS, Clearing
from processors.ledger import Ledger
from schemas.serde import encode
from tests.integration.harness import produce, send, wait_for_results
from tests.integration.test_clearing_stream import PARTITIONS, _booked, _close, _info, _statements
from tests.support import BOOK, cancel, institution, line, person, settlement


def _offline_statements(events: list[dict], month: str) -> dict[str, dict]:
    clearing = Clearing()
    for _ in settle_lines([encode(e) for e in events], Ledger(BOOK), clearing):
        pass
    return {s["statement_id"]: s for s in clearing.close(month)}


def test_kill_9_during_clearing_leaves_the_statements_as_offline(broker, spawn, tmp_path):
    codes = [f"H5301019910{i}" for i in range(5)]
    people = [person(f"KCL{i:03d}", balc="500") for i in range(30)]
    setup = [institution(c, 1 + i % 3) for i, c in enumerate(codes)] + people
    bills = [settlement([line(f"{60 + i % 300}.{i % 89:02d}"), line("20", "02")], psn_no=people[i % 30]["input"]["psn_no"],
                        fixmedins_code=codes[i % 5], day=f"2025-05-{1 + i % 28:02d}", acct_used_flag=str(i % 2),
                        msgid=f"KCL-B{i:05d}") for i in range(2000)]
    cancels = [cancel(bills[i], msgid=f"KCL-C{i:05d}") for i in range(0, 2000, 61)]
    # two workers in one group share the clearing partitions; one is killed in the burst, and the other
    # takes its partitions over, rebuilding their clearing state from the log
    first, second = spawn(broker.bootstrap), spawn(broker.bootstrap)
    first.wait_started()
    second.wait_started()
    send(broker.bootstrap, setup, tmp_path, timeout=90)
    produce(broker.bootstrap, [("settle.requests", b["input"]["data"]["psn_no"].encode(), encode(b),
                                [("content-type", b"application/json")]) for b in bills])
    wait_for_results(broker.bootstrap, [b["msgid"] for b in bills], at_least=300, idle=0.2)
    first.signal(signal.SIGKILL)
    assert first.wait(60) == -signal.SIGKILL
    send(broker.bootstrap, cancels, tmp_path, timeout=180)
    results = wait_for_results(broker.bootstrap, [b["msgid"] for b in bills], at_least=len(bills), timeout=180)
    infos = {_info(next(iter(results[m])))["setl_id"] for m in [b["msgid"] for b in bills + cancels]}
    _booked(broker.bootstrap, infos, timeout=60)
    send(broker.bootstrap, [_close("2025-05", "KCL-CLOSE-1")], tmp_path)
    statements, _ = _statements(broker.bootstrap, "2025-05", PARTITIONS)
    second.signal(signal.SIGKILL)  # after the close: its state must come back closed
    assert second.wait(60) == -signal.SIGKILL

    third = spawn(broker.bootstrap)
    third.wait_started()
    send(broker.bootstrap, [_close("2025-05", "KCL-CLOSE-2")], tmp_path)
    after, receipts = _statements(broker.bootstrap, "2025-05", PARTITIONS, again=True)
    assert len(receipts) == PARTITIONS  # the state came back closed: the second close writes no statement
    want = _offline_statements(setup + bills + cancels, "2025-05")
    fields = ("statement_id", "settlements", "cancels", *SUMS, "rows", "fund_pay", "late")
    for s in after:  # a statement written again (its close redone after the kill) is the same statement
        assert {k: s[k] for k in fields} == {k: want[s["statement_id"]][k] for k in fields}
    assert sorted(s["statement_id"] for s in statements) == sorted(want)
    assert third.stop() == 0, third.log()
