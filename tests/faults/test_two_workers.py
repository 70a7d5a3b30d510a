"""Guarantee: with two workers in one consumer group, a kill -9 of one of them mid-burst loses
nothing and doubles nothing: every request gets exactly one distinct result, equal to the offline
result, and afterwards each person's balance and year totals are those of the offline run.

How the test tries to break it: 40 people, two workers sharing the 4 partitions (the second one
has joined and is ready), 6,000 settlements produced at once (inpatient and outpatient, account
payments, levels 1-3, dates spread over November-December), and worker 1 killed with SIGKILL when
about a quarter is answered: its uncommitted batches are redelivered to worker 2, which must
rebuild the ledger partitions it takes over from `ledger.ops` and answer each request once (a
redelivered request may be answered again only with the same bytes). A probe settlement per
person afterwards compares balances and year totals with the offline run.
"""
from __future__ import annotations

import signal
import time

from schemas.serde import encode
from tests.integration.harness import mixed_bills, offline, produce, send, wait_for_results
from tests.support import hospitals, line, person, settlement

JSON_HL = [("content-type", b"application/json")]
N = 6000


def _ready(worker, timeout: float = 60) -> None:
    """Wait until the worker has joined the group and got its partitions."""
    deadline = time.monotonic() + timeout
    while "Worker]: Ready" not in worker.log():
        assert worker.proc.poll() is None and time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.2)


def test_kill_9_of_one_of_two_workers_mid_burst_answers_each_request_once_as_offline(broker, spawn, tmp_path):
    people = [person(f"FZTW{i:04d}", balc="3000", retired=i % 3 == 0, brdy=f"19{48 + i % 30}-07-1{i % 9}")
              for i in range(40)]
    first = spawn(broker.bootstrap)
    first.wait_started()
    send(broker.bootstrap, hospitals() + people, tmp_path, timeout=90)
    second = spawn(broker.bootstrap)
    second.wait_started()
    _ready(second)

    bills = mixed_bills(people, N, "FZTW-")
    msgids = [b["msgid"] for b in bills]
    produce(broker.bootstrap, [("settle.requests", b["input"]["data"]["psn_no"].encode(), encode(b), JSON_HL)
                               for b in bills])
    seen = wait_for_results(broker.bootstrap, msgids, N // 4, timeout=120, idle=0.2, workers=(first, second))
    at_kill = sum(m in seen for m in msgids)
    assert second.proc.poll() is None, second.log()[-3000:]
    assert at_kill < N, "the burst was answered before a worker could be killed mid-way"
    first.signal(signal.SIGKILL)
    assert first.wait(60) == -signal.SIGKILL

    seen = wait_for_results(broker.bootstrap, msgids, N, timeout=180, idle=0.2, workers=(second,))
    assert second.proc.poll() is None, second.log()[-3000:]
    expected = offline(hospitals() + people + bills)[len(hospitals()) + len(people):]
    counts = [len(seen.get(m, ())) for m in msgids]
    print(f"\n{N} requests, killed at {at_kill} answered; {sum(c == 1 for c in counts)} answered once, "
          f"{sum(c == 0 for c in counts)} never, {sum(c > 1 for c in counts)} with different answers")
    assert counts == [1] * N  # one distinct result each
    wrong = [m for m, want in zip(msgids, expected) if seen[m] != {want}]
    assert wrong == [], f"{len(wrong)} results differ from offline, e.g. {wrong[:5]}"

    probes = [settlement([line("777")], psn_no=p["input"]["psn_no"], acct_used_flag="1", day="2024-12-31",
                         msgid=f"FZTW-PROBE-{k:03d}") for k, p in enumerate(people)]
    got = send(broker.bootstrap, probes, tmp_path)
    want = offline(hospitals() + people + bills + probes)[-len(probes):]
    assert [got.get(p["msgid"]) for p in probes] == want  # balances and year totals equal the offline run
    print(f"{len(probes)} probes equal offline")
    assert second.stop() == 0, second.log()[-3000:]
