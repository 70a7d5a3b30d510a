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

import json
import signal
import time

from schemas.serde import encode
from tests.integration.harness import offline, produce, read_all, send
from tests.support import hospitals, line, person, settlement

JSON_HL = [("content-type", b"application/json")]
N = 6000


def _results(bootstrap: str, idle: float = 0.5) -> dict[str, set[bytes]]:
    seen: dict[str, set[bytes]] = {}
    for r in read_all(bootstrap, "settle.results", idle=idle):
        seen.setdefault(json.loads(r.value)["inf_refmsgid"], set()).add(r.value)
    return seen


def _wait_for(bootstrap: str, msgids: list[str], at_least: int, workers, timeout: float) -> dict[str, set[bytes]]:
    deadline = time.monotonic() + timeout
    while True:
        seen = _results(bootstrap, idle=0.2)
        if sum(m in seen for m in msgids) >= at_least or time.monotonic() > deadline \
                or all(w.proc.poll() is not None for w in workers):
            return seen
        time.sleep(0.2)


def _bills(people: list[dict], n: int, tag: str) -> list[dict]:
    return [settlement([line(f"{50 + i % 400}.{i % 97:02d}"), line("30", "02"), line("12", "03")],
                       psn_no=people[i % len(people)]["input"]["psn_no"], msgid=f"{tag}{i:06d}",
                       level=1 + i % 3, acct_used_flag=str(i % 2), med_type="21" if i % 10 == 0 else "11",
                       day=f"2024-{11 + (i * 2) // n:02d}-{1 + i % 28:02d}")
            for i in range(n)]


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

    bills = _bills(people, N, "FZTW-")
    msgids = [b["msgid"] for b in bills]
    produce(broker.bootstrap, [("settle.requests", b["input"]["data"]["psn_no"].encode(), encode(b), JSON_HL)
                               for b in bills])
    seen = _wait_for(broker.bootstrap, msgids, N // 4, [first, second], timeout=120)
    at_kill = sum(m in seen for m in msgids)
    assert second.proc.poll() is None, second.log()[-3000:]
    assert at_kill < N, "the burst was answered before a worker could be killed mid-way"
    first.signal(signal.SIGKILL)
    assert first.wait(60) == -signal.SIGKILL

    seen = _wait_for(broker.bootstrap, msgids, N, [second], timeout=180)
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
