"""Guarantee: a msgid is unique per person, whichever partition the person lives on, and ids cannot
collide. Person A's request and person B's different request under the same msgid are two requests:
each gets its own success, with its own `setl_id`, and clearing keeps both; a changed request of A
under A's msgid is refused with "MSGID_REUSED: ..." and changes nothing; the results (and afterwards
the balances and year totals) are the same streaming as offline. (Why the scope is the person and
not the whole service: README, "Results".) Before the fix, both settlements got `setl_id` "S" + msgid
and clearing, idempotent by `setl_id`, merged them.

How the tests try to break it: 40 pairs of people; for each pair, B's psn_no is chosen so that
murmur2 (the partitioner of every producer here, and of the router's `ledger.ops` key) puts B on
another of the 4 partitions than A. A's 40 settlements are sent and answered first; then B's 40
settlements, each with a different bill under its A's msgid, then A's 40 changed re-sends.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from schemas import avro
from schemas.serde import encode
from streams import topics
from tests.integration.harness import offline, read_all, send
from tests.support import hospitals, line, person, settlement

PARTITIONS = 4
PAIRS = 40
JSON_HL = [("content-type", b"application/json")]


def _partition(key: str) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def _pairs() -> list[tuple[str, str]]:
    out = []
    for i in range(PAIRS):
        a = f"FZRA{i:04d}"
        b = next(f"FZRB{i:04d}{j}" for j in range(100) if _partition(f"FZRB{i:04d}{j}") != _partition(a))
        out.append((a, b))
    return out


def _produce(bootstrap: str, bills: list[dict]) -> None:
    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            for b in bills:
                await producer.send(topics.REQUESTS, encode(b), key=b["input"]["data"]["psn_no"].encode(),
                                    headers=JSON_HL)
            await producer.flush()
        finally:
            await producer.stop()
    asyncio.run(go())


def _results(bootstrap: str, msgids: set[str]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for r in read_all(bootstrap, topics.RESULTS, idle=0.5):
        m = json.loads(r.value)["inf_refmsgid"]
        if m in msgids:
            out.setdefault(m, []).append(r.value)
    return out


def _wait(bootstrap: str, worker, msgids: set[str], per_msgid: int, timeout: float = 90) -> dict[str, list[bytes]]:
    deadline = time.monotonic() + timeout
    while True:
        seen = _results(bootstrap, msgids)
        if all(len(seen.get(m, [])) >= per_msgid for m in msgids) or time.monotonic() > deadline \
                or worker.proc.poll() is not None:
            return seen
        time.sleep(0.3)


@pytest.fixture(scope="module")
def reuse(broker, worker, tmp_path_factory):
    """Send the people, A's settlements (wait for them), then B's under the same msgids."""
    tmp = tmp_path_factory.mktemp("reuse")
    assert worker.proc.poll() is None, worker.log()[-3000:]
    pairs = _pairs()
    assert all(_partition(a) != _partition(b) for a, b in pairs)
    people = [person(p, balc="1000", retired=k % 2 == 0) for k, pair in enumerate(pairs) for p in pair]
    assert len(send(broker.bootstrap, people, tmp)) == len(people)
    firsts = [settlement([line(f"{100 + i}.00"), line("40", "02")], psn_no=a, msgid=f"FZR-{i:04d}", acct_used_flag="1")
              for i, (a, _) in enumerate(pairs)]
    seconds = [settlement([line(f"{300 + i}.50"), line("12", "03")], psn_no=b, msgid=f"FZR-{i:04d}", level=2,
                          acct_used_flag="1") for i, (_, b) in enumerate(pairs)]
    changed = [settlement([line(f"{100 + i}.01"), line("40", "02")], psn_no=a, msgid=f"FZR-{i:04d}",
                          acct_used_flag="1") for i, (a, _) in enumerate(pairs)]
    msgids = {f["msgid"] for f in firsts}
    _produce(broker.bootstrap, firsts)
    assert len(_wait(broker.bootstrap, worker, msgids, 1)) == PAIRS
    _produce(broker.bootstrap, seconds)
    assert len(_wait(broker.bootstrap, worker, msgids, 2)) == PAIRS
    _produce(broker.bootstrap, changed)
    seen = _wait(broker.bootstrap, worker, msgids, 3)
    time.sleep(1.0)  # a fourth answer, if any, would show now
    seen = _results(broker.bootstrap, msgids)
    assert worker.proc.poll() is None, worker.log()[-3000:]
    clearing = [avro.decode_record("clearing_entry", r.value) for r in read_all(broker.bootstrap, topics.CLEARING)]
    return {"pairs": pairs, "people": people, "firsts": firsts, "seconds": seconds, "changed": changed, "seen": seen,
            "clearing": [c for c in clearing if c["msgid"] in msgids], "tmp": tmp}


def test_a_msgid_is_settled_once_per_person_and_a_changed_resend_is_refused(reuse):
    firsts, seen = reuse["firsts"], reuse["seen"]
    problems = []
    for a_bill, (a, b) in zip(firsts, reuse["pairs"]):
        docs = [json.loads(raw) for raw in seen.get(a_bill["msgid"], [])]
        ok = sorted(d["output"]["setlinfo"]["psn_no"] for d in docs if d["infcode"] == 0)
        refused = [d for d in docs if d["infcode"] == -1]
        if len(docs) != 3:
            problems.append(f"{a_bill['msgid']}: {len(docs)} answers, not one to each of 3 requests")
        if ok != sorted([a, b]):
            problems.append(f"{a_bill['msgid']}: accepted for {ok}, not once for A and once for B")
        if len(refused) != 1 or not refused[0]["err_msg"].startswith("MSGID_REUSED"):
            problems.append(f"{a_bill['msgid']}: A's changed re-send answered {refused}")
    print(f"\n{3 * PAIRS} requests checked; {len(reuse['clearing'])} clearing entries")
    assert problems == [], problems[:5]
    assert len(reuse["clearing"]) == 2 * PAIRS  # one clearing entry per settlement, none merged


def test_msgid_reuse_gives_unique_setl_ids_and_the_offline_results(reuse, broker):
    firsts, seconds, seen, people = reuse["firsts"], reuse["seconds"], reuse["seen"], reuse["people"]
    setl_ids = [c["setl_id"] for c in reuse["clearing"]]
    assert len(setl_ids) == len(set(setl_ids)), "two settlements share a setl_id in clearing"
    changed = reuse["changed"]
    want = offline(hospitals() + people + firsts + seconds + changed)[-3 * PAIRS:]
    got = [sorted(seen.get(f["msgid"], [])) for f in firsts]
    assert got == [sorted(trio) for trio in zip(want[:PAIRS], want[PAIRS:2 * PAIRS], want[2 * PAIRS:])]  # as offline
    probes = [settlement([line("55")], psn_no=p["input"]["psn_no"], msgid=f"FZR-PROBE-{k:03d}", acct_used_flag="1",
                         day="2024-12-20") for k, p in enumerate(people)]
    answers = send(broker.bootstrap, probes, reuse["tmp"])
    want = offline(hospitals() + people + firsts + seconds + changed + probes)[-len(probes):]
    assert [answers.get(p["msgid"]) for p in probes] == want  # balances and year totals as offline
    print(f"\n{3 * PAIRS} reused-msgid requests, {len(setl_ids)} clearing entries and {len(probes)} probes checked")
