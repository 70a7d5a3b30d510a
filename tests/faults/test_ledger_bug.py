"""Guarantee: when the ledger fails on an op (a bug, not an input error), the worker stops before the
batch holding it is acknowledged, so nothing after it is skipped: a restart redoes the batch and
every request gets exactly one distinct result, equal to the offline result.

How the test tries to break it: a worker whose `Ledger.apply` raises for one msgid (injected by a
`sitecustomize` on its PYTHONPATH; the Kafka side is all real), 300 settlements produced at once
with that msgid in the middle, on the same partitions as the others. Before the fix, Faust
acknowledged the whole batch when the agent left it and restarted the agent past it: the requests
batched with the failing one were never answered. Then a worker without the fault takes over.
"""
from __future__ import annotations

import time

from schemas.serde import encode
from streams.health import AGENT_FAILED
from tests.integration.harness import broker_pid, offline, produce, results_by_msgid, send, wait_for_results
from tests.support import hospitals, line, person, settlement

JSON_HL = [("content-type", b"application/json")]
BUG_MSGID = "BUG-0150"
INJECT = '''
import os
_bad = os.environ.get("YIBAO_TEST_BUG_MSGID")
if _bad:
    from processors.ledger import Ledger
    _answer = Ledger.answer
    def answer(self, event):
        if event.msgid == _bad:
            raise RuntimeError("injected ledger bug")
        return _answer(self, event)
    Ledger.answer = answer
'''


def test_a_ledger_bug_stops_the_worker_before_its_batch_is_acknowledged(broker, spawn, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(INJECT)
    people = [person(f"BUGP{i:04d}", balc="800") for i in range(12)]
    bills = [settlement([line(f"{60 + i % 50}.{i % 90:02d}"), line("25", "02")], psn_no=f"BUGP{i % 12:04d}",
                        msgid=f"BUG-{i:04d}", acct_used_flag=str(i % 2), day=f"2024-11-{1 + i % 28:02d}")
             for i in range(300)]
    assert bills[150]["msgid"] == BUG_MSGID

    faulty = spawn(broker.bootstrap, extra_env={"PYTHONPATH": str(hooks), "YIBAO_TEST_BUG_MSGID": BUG_MSGID})
    faulty.wait_started()
    send(broker.bootstrap, hospitals() + people, tmp_path, timeout=90)
    produce(broker.bootstrap, [("settle.requests", b["input"]["data"]["psn_no"].encode(), encode(b), JSON_HL)
                               for b in bills])
    started = time.monotonic()
    assert faulty.wait(60) == AGENT_FAILED, faulty.log()[-3000:]
    print(f"\nthe faulty worker stopped {time.monotonic() - started:.1f}s after the burst was produced")
    assert "ledger agent failed" in faulty.log() and "injected ledger bug" in faulty.log()
    before = results_by_msgid(broker.bootstrap, idle=0.3)
    assert BUG_MSGID not in before

    healthy = spawn(broker.bootstrap)
    healthy.wait_started()
    msgids = [b["msgid"] for b in bills]
    seen = wait_for_results(broker.bootstrap, msgids, len(msgids), timeout=120, idle=0.3, workers=(healthy,))
    expected = offline(hospitals() + people + bills)[-len(bills):]
    answered_before = sum(m in before for m in msgids)
    print(f"{len(bills)} requests: {answered_before} answered before the stop, all {len(bills)} after the restart")
    assert [len(seen.get(m, ())) for m in msgids] == [1] * len(msgids)  # one distinct result each
    assert [next(iter(seen[m])) for m in msgids] == expected
    assert healthy.stop() == 0, healthy.log()[-3000:]


def test_a_ledger_bug_on_the_embedded_broker_ends_the_worker_and_its_broker_together(spawn, tmp_path):
    """Abort runs the clean-ups: the embedded broker (its own session) must not be left running."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(INJECT)
    worker = spawn(None, extra_env={"PYTHONPATH": str(hooks), "YIBAO_TEST_BUG_MSGID": BUG_MSGID})
    bootstrap = worker.wait_started()
    port = bootstrap.split(":")[1]
    assert broker_pid(port) is not None
    people = [person("BUGE0001")]
    send(bootstrap, hospitals() + people, tmp_path, timeout=90)
    bill = settlement([line("10")], psn_no="BUGE0001", msgid=BUG_MSGID)
    produce(bootstrap, [("settle.requests", b"BUGE0001", encode(bill), JSON_HL)])
    assert worker.wait(60) == AGENT_FAILED, worker.log()[-3000:]
    deadline = time.monotonic() + 10
    while broker_pid(port) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert broker_pid(port) is None, "the embedded broker outlived its worker"
