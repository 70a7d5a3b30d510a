"""Guarantee: on the real (embedded) broker, every hostile message is dead-lettered — one
`settle.rejected` record per message, matched one to one by (source topic, partition, offset) — or
answered, the worker never exits, and every valid request produced between hostile ones gets its
offline result byte for byte.

How the tests try to break it: a worker subprocess on a module-scoped broker gets bursts produced
all at once over 4 partitions, poison keyed like the valid traffic so that it sits in the same
partitions and batches: (1) 100 valid settlements, five poison messages (JSON nested 5,000 levels
deep as an array and as an object, JSON-escaped lone surrogates in msgid / infno / fixmedins_code),
100 more valid ones; (2) every hand-written category of tests/faults/corpus.py (oversized, Avro
garbage, odd content types, null and empty values included) between valid settlements, plus the
context ones (a reused msgid, unknown cancels, year 0001, a person born 9999-12-31) and foreign
bytes written straight to the internal `ledger.ops` topic; (3) 300 seeded random mutants (seed in
the test name) between valid settlements. Each dead letter is checked against the contract
(corpus.check_dead_letter), each answer against the contract or the offline run of the same
messages, and no message may get an answer it should not.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from decimal import Decimal

from aiokafka import AIOKafkaProducer

from connectors.files import settle_lines
from processors.ledger import Ledger
from schemas import avro
from schemas.serde import encode
from streams import topics
from streams.codec import content_type
from tests.faults.corpus import (
    AVRO,
    DLQ_CODES,
    JSON_H,
    SEED,
    Hostile,
    check_dead_letter,
    dumps,
    every,
    expected_answer,
    in_context,
    mutants,
    nested,
)
from tests.integration.harness import offline, read_all, send
from tests.support import BOOK, hospitals, line, person, settlement

JSON_HL = [("content-type", b"application/json")]


def _produce(bootstrap: str, messages: list[tuple]) -> list[tuple[int, int]]:
    """Produce (topic, key, value, headers[, partition]) in order; return each one's (partition, offset)."""
    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=20_000_000, linger_ms=5)
        await producer.start()
        try:
            futures = []
            for topic, key, value, headers, *partition in messages:
                futures.append(await producer.send(topic, value, key=key, headers=list(headers),
                                                   partition=partition[0] if partition else None))
            return [(md.partition, md.offset) for md in await asyncio.gather(*futures)]
        finally:
            await producer.stop()
    return asyncio.run(go())


def _results(bootstrap: str) -> dict[str, list[tuple[bytes, dict]]]:
    """settle.results by inf_refmsgid: (raw value, decoded envelope)."""
    out: dict[str, list] = {}
    for r in read_all(bootstrap, topics.RESULTS, idle=0.5):
        ctype = dict(r.headers or []).get("content-type", b"application/json")
        doc = avro.decode_result(r.value) if ctype == AVRO.encode() else json.loads(r.value, parse_float=Decimal)
        out.setdefault(doc["inf_refmsgid"], []).append((r.value, doc))
    return out


def _dead(bootstrap: str) -> dict[tuple[str, int, int], list[dict]]:
    out: dict[tuple, list] = {}
    for r in read_all(bootstrap, topics.REJECTED, idle=0.5):
        rec = avro.decode_record("rejected", r.value)
        out.setdefault((rec["source_topic"], rec["partition"], rec["offset"]), []).append(rec)
    return out


def _until(worker, done, timeout: float = 120):
    """Poll `done()` -> (finished, state) until finished, the worker exits, or the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        finished, state = done()
        if finished or time.monotonic() > deadline or worker.proc.poll() is not None:
            return state
        time.sleep(0.3)


def _dead_at(worker, bootstrap: str, wanted: list[tuple[str, int, int]], timeout: float = 30) -> dict:
    def done():
        dead = _dead(bootstrap)
        return all(c in dead for c in wanted), dead
    return _until(worker, done, timeout)


def _alive(worker) -> None:
    assert worker.proc.poll() is None, f"the worker exited with {worker.proc.returncode}:\n{worker.log()[-3000:]}"


def _bills(people: list[dict], n: int, tag: str) -> list[dict]:
    return [settlement([line(f"{40 + i % 300}.{i % 89:02d}"), line("25", "02"), line("6", "03")],
                       psn_no=people[i % len(people)]["input"]["psn_no"], msgid=f"{tag}{i:04d}", level=1 + i % 3,
                       acct_used_flag=str(i % 2), day=f"2024-11-{1 + i % 28:02d}") for i in range(n)]


def _canon(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, default=str)


def test_a_poison_message_between_valid_ones_stops_nothing(broker, worker, tmp_path):
    _alive(worker)  # a worker an earlier test killed fails here, not after a timeout
    people = [person(f"FZPB{i:04d}", balc="300", retired=i % 2 == 0) for i in range(20)]
    assert len(send(broker.bootstrap, people, tmp_path)) == len(people)
    before, after = _bills(people, 100, "FZPB-A"), _bills(people, 100, "FZPB-Z")
    everything = settlement([line("10")], psn_no=people[2]["input"]["psn_no"], msgid="FZPB-S1\ud800")
    everything.update(infno="\udfff", fixmedins_code="H53010100001\udc00")
    poison = [dumps(nested(5000)), dumps(nested(5000, "object")), dumps(everything),
              dumps(settlement([line("10")], psn_no=people[3]["input"]["psn_no"], msgid="FZPB-S2\ud800")),
              dumps(settlement([line("10")], psn_no=people[4]["input"]["psn_no"], msgid="FZPB-S3",
                               fixmedins_code="H53010100001\udbff"))]
    assert all(b"\\ud" in p for p in poison[2:])  # JSON-escaped lone surrogates
    valid = before + after
    messages = [(topics.REQUESTS, b["input"]["data"]["psn_no"].encode(), encode(b), JSON_HL) for b in before] + \
        [(topics.REQUESTS, people[k]["input"]["psn_no"].encode(), p, JSON_HL) for k, p in enumerate(poison)] + \
        [(topics.REQUESTS, b["input"]["data"]["psn_no"].encode(), encode(b), JSON_HL) for b in after]
    coords = _produce(broker.bootstrap, messages)
    assert len({p for p, _ in coords}) == 4  # spread over the 4 partitions
    msgids = [b["msgid"] for b in valid]

    def done():
        seen = _results(broker.bootstrap)
        return all(m in seen for m in msgids), seen

    seen = _until(worker, done, timeout=90)
    answered = sum(m in seen for m in msgids)
    print(f"\n{len(valid)} valid and {len(poison)} poison messages; {answered} of {len(valid)} valid answered")
    _alive(worker)
    assert answered == len(valid)
    want = offline(hospitals() + people + valid)[-len(valid):]
    assert [[raw for raw, _ in seen[m]] for m in msgids] == [[w] for w in want]  # once each, the offline bytes

    poison_coords = coords[len(before):len(before) + len(poison)]
    dead = _dead_at(worker, broker.bootstrap, [(topics.REQUESTS, p, o) for p, o in poison_coords])
    for (p, o) in coords[:len(before)] + coords[len(before) + len(poison):]:
        assert (topics.REQUESTS, p, o) not in dead  # nothing valid is dead-lettered
    answers = []
    for value, (p, o) in zip(poison, poison_coords):
        [rec] = dead[(topics.REQUESTS, p, o)]
        answer = expected_answer(check_dead_letter(rec, value, JSON_H, topics.REQUESTS, p, o), rec["reason"])
        if answer is not None:
            answers.append(answer)
    assert {a["inf_refmsgid"] for a in answers} == {"FZPB-S1\\ud800", "FZPB-S2\\ud800", "FZPB-S3"}
    results = _results(broker.bootstrap)
    for answer in answers:  # each answered once, escaped, with the dead letter's reason
        assert [doc for _, doc in results.get(answer["inf_refmsgid"], [])] == [answer]
    _alive(worker)


def _twin(value: bytes | None, headers) -> bytes | None:
    """The JSON line the offline run gets for a message (None: nothing it could route)."""
    if value is None or not value.strip():
        return None
    if content_type(dict(headers)) == AVRO:
        try:
            return encode(avro.decode_request(value))
        except ValueError:
            return None
    return value.replace(b"\n", b" ")


def _burst(broker, worker, tmp_path, tag: str, hostile: list[Hostile], context=None, per_valid: int = 3) -> dict:
    """Send people, then valid settlements with `per_valid` hostile messages after each (and the
    context items after all), all at once; check every message; return counts."""
    people = [person(f"FZ{tag}{i:03d}", balc="500", retired=i % 2 == 1) for i in range(8)]
    valid = _bills(people, max(40, -(-len(hostile) // per_valid)), f"FZ{tag}-V")
    setup, extra = context(valid, people[0]["input"]["psn_no"]) if context else ([], [])
    assert len(send(broker.bootstrap, people + setup, tmp_path)) == len(people) + len(setup)
    entries: list = []
    for i, b in enumerate(valid):
        entries.append(b)
        entries += hostile[i * per_valid:(i + 1) * per_valid]
    entries += extra
    messages = []
    for i, e in enumerate(entries):
        if isinstance(e, dict):
            messages.append((topics.REQUESTS, e["input"]["data"]["psn_no"].encode(), encode(e), JSON_HL))
        else:
            key = people[i % len(people)]["input"]["psn_no"].encode() if e.key == b"FZKEY" else e.key
            messages.append((topics.REQUESTS, key, e.value, e.headers))
    coords = _produce(broker.bootstrap, messages)

    # What the offline run of the same messages answers (a hostile message changes no state).
    base = hospitals() + people + setup
    twins = [(i, encode(e) if isinstance(e, dict) else _twin(e.value, e.headers)) for i, e in enumerate(entries)]
    twins = [(i, t) for i, t in twins if t is not None]
    lines = [encode(e) for e in base] + [t for _, t in twins]
    by_line = {item.lineno: item.result for item in settle_lines(lines, Ledger(BOOK))}
    offline_of = {i: by_line[len(base) + k + 1] for k, (i, _) in enumerate(twins) if len(base) + k + 1 in by_line}
    want_valid = offline(base + valid)[-len(valid):]

    def accounted(results, dead):
        missing = []
        for i, (e, (p, o)) in enumerate(zip(entries, coords)):
            if isinstance(e, dict):
                ok = e["msgid"] in results
            else:
                answer = offline_of.get(i)
                ok = (topics.REQUESTS, p, o) in dead or (answer is not None and answer["inf_refmsgid"] in results)
            if not ok:
                missing.append(i)
        return missing

    def done():
        results, dead = _results(broker.bootstrap), _dead(broker.bootstrap)
        return not accounted(results, dead), (results, dead)

    results, dead = _until(worker, done, timeout=120)
    time.sleep(1.0)  # anything more (a duplicate answer) would show now
    results, dead = _results(broker.bootstrap), _dead(broker.bootstrap)
    _alive(worker)
    missing = accounted(results, dead)
    assert not missing, f"{len(missing)} messages neither dead-lettered nor answered, e.g. " + \
        "; ".join(f"{entries[i].name if isinstance(entries[i], Hostile) else entries[i]['msgid']}" for i in missing[:10])

    failures, expected, counts = [], {}, {"valid": 0, "dead-lettered": 0, "answered": 0, "routed": 0}
    for i, (e, (p, o)) in enumerate(zip(entries, coords)):
        here = dead.get((topics.REQUESTS, p, o), [])
        try:
            if isinstance(e, dict):
                assert here == [], f"a valid request was dead-lettered: {here}"
                want = want_valid[valid.index(e)]
                expected.setdefault(e["msgid"], []).append(json.loads(want, parse_float=Decimal))
                assert want in [raw for raw, _ in results[e["msgid"]]], "not its offline result"
                counts["valid"] += 1
                continue
            by_router = len(here) == 1 and not here[0]["reason"].startswith(DLQ_CODES)
            if e.expect == "reject":
                assert by_router, f"not dead-lettered by the router: {here}"
            if e.expect == "route":
                assert not by_router, f"dead-lettered, but valid: {here[0]['reason'] if here else ''}"
            if by_router:
                [rec] = here
                seen = check_dead_letter(rec, e.value, e.headers, topics.REQUESTS, p, o)
                if e.reason:
                    assert e.reason in rec["reason"], f"{rec['reason']!r} does not name {e.reason}"
                answer = expected_answer(seen, rec["reason"])
                counts["dead-lettered"] += 1
                if answer is not None:
                    expected.setdefault(answer["inf_refmsgid"], []).append(answer)
                    counts["answered"] += 1
                continue
            answer = json.loads(encode(offline_of[i]), parse_float=Decimal)
            expected.setdefault(answer["inf_refmsgid"], []).append(answer)
            counts["routed"] += 1
            if e.refused:
                assert answer["infcode"] == -1, f"accepted offline: {answer}"
            if e.code:
                assert answer["err_msg"].startswith(e.code + ": "), answer["err_msg"]
            if e.reason:
                assert e.reason in answer["err_msg"], answer["err_msg"]
            if (answer["err_msg"] or "").split(":")[0] in DLQ_CODES:
                assert len(here) == 1 and here[0]["reason"] == answer["err_msg"], here
                assert here[0]["original"] == e.value
            else:
                assert here == [], f"dead-lettered although answered: {here}"
        except (AssertionError, KeyError) as err:
            name = e["msgid"] if isinstance(e, dict) else f"{e.category}: {e.name}"
            failures.append(f"{name} @ {p}/{o}: {type(err).__name__}: {str(err).splitlines()[0][:300]}")
    for msgid, docs in expected.items():
        got = sorted(_canon(doc) for _, doc in results.get(msgid, []))
        if got != sorted(_canon(d) for d in docs):
            failures.append(f"answers for msgid {msgid!r}: got {got}, want {sorted(_canon(d) for d in docs)}")
    prefix = f"FZ{tag}"
    for msgid in results:
        if isinstance(msgid, str) and msgid.startswith(prefix) and msgid not in expected:
            failures.append(f"an answer nobody should get: {msgid!r}: {results[msgid][0][1]}")
    counts["hostile"] = len(entries) - len(valid)
    print(f"\n{tag}: {counts}")
    assert not failures, f"{len(failures)} messages broke the guarantee:\n" + "\n".join(failures[:40])
    _alive(worker)
    return counts


def test_every_hand_written_category_is_dead_lettered_or_answered(broker, worker, tmp_path):
    _alive(worker)  # a worker an earlier test killed fails here, not after a timeout
    hostile = [h for h in every("BC") if h.broker and h.category != "inexact amounts"]

    counts = _burst(broker, worker, tmp_path, "BC", hostile,
                    lambda valid, psn_no: in_context("BX", valid, psn_no, "FZBCFUTURE0001"))
    assert counts["hostile"] == len(hostile) + 8  # 3 reused msgids, 3 unknown cancels, year 0001, born 9999


def test_foreign_bytes_on_ledger_ops_are_dead_lettered_and_the_ledger_goes_on(broker, worker, tmp_path):
    _alive(worker)  # a worker an earlier test killed fails here, not after a timeout
    people = [person(f"FZLO{i:03d}", balc="200") for i in range(4)]
    send(broker.bootstrap, people, tmp_path)
    rng = random.Random(SEED)
    garbage = [rng.randbytes(50) for _ in range(4)] + [b"", b"{}"]
    coords = _produce(broker.bootstrap, [(topics.LEDGER_OPS, None, g, [], k % 4) for k, g in enumerate(garbage)])
    bills = _bills(people, 20, "FZLO-V")
    got = send(broker.bootstrap, bills, tmp_path)
    _alive(worker)
    assert [got.get(b["msgid"]) for b in bills] == offline(hospitals() + people + bills)[-len(bills):]
    dead = _dead_at(worker, broker.bootstrap, [(topics.LEDGER_OPS, p, o) for p, o in coords])
    for g, (p, o) in zip(garbage, coords):
        [rec] = dead[(topics.LEDGER_OPS, p, o)]
        assert rec["original"] == g and rec["original_size"] == len(g) and rec["reason"].strip()
        assert rec["msgid"] is None
    print(f"\n{len(garbage)} foreign ledger.ops records and {len(bills)} valid requests checked")


def test_300_seeded_mutants_seed_20261203_are_dead_lettered_or_answered(broker, worker, tmp_path):
    _alive(worker)  # a worker an earlier test killed fails here, not after a timeout
    assert SEED == 20261203
    hostile = mutants(random.Random(SEED), 300, "BM")
    counts = _burst(broker, worker, tmp_path, "BM", hostile)
    assert counts["hostile"] == 300
