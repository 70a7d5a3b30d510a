"""Guarantee: the router (`streams.routing.route`) never raises, whatever bytes and headers arrive,
and turns every message into either `ledger.ops` records (a valid event) or exactly one dead letter
on `settle.rejected`, plus an error result on `settle.results` exactly when the message still shows
a string msgid and fixmedins_code (the contract is written out in tests/faults/corpus.py).

How the tests try to break it: every hand-written category of hostile input in corpus.py (random
bytes, truncations, wrong types, NaN / 1e400 / 4,400-digit amounts, 5,000-level nesting, lone
surrogates and other unicode oddities, missing fields, Avro garbage, odd content types, empties,
messages over the size limit and over 16 MiB, impossible dates), then hypothesis-generated
messages (mutated events of every kind, random JSON values, mutated Avro, random headers, keys,
sources, partition counts and size limits). Every record produced must decode with its codec, with
bytes keys, and the dead letter must carry the original bytes, its source and a human reason.
"""
from __future__ import annotations

import copy
import json
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import avro
from schemas.avro import message_time
from schemas.models import EVENT
from streams import topics
from streams.codec import content_type
from streams.routing import BINDINGS, COORDINATOR, Source, home, route
from tests.faults.corpus import (
    AVRO,
    CATEGORIES,
    JSON,
    LITERALS,
    MAX_BYTES,
    NOBODY,
    ROUTER_BASES,
    Raw,
    _paths,
    _set,
    answer_key,
    bill,
    categories,
    check_dead_letter,
    dumps,
    escape,
    expected_answer,
    messages,
)
from tests.support import line, settlement

SRC = Source(topics.REQUESTS, 3, 1234, 1730451600000)
SETTINGS = settings(max_examples=1000, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
sources = st.builds(Source, topic=st.sampled_from([topics.REQUESTS, topics.COMMANDS]),
                    partition=st.integers(0, 2**31 - 1), offset=st.integers(0, 2**63 - 1),
                    timestamp_ms=st.integers(0, 253_402_300_799_999))  # up to 9999-12-31T23:59:59.999Z


def check_route(value, key, headers, src: Source, partitions: int, max_bytes: int) -> str:
    """Route one message and assert the whole contract. Returns "routed", "rejected" or "answered"."""
    records = route(value, key, dict(headers), src, partitions, max_bytes)  # must not raise
    assert isinstance(records, list) and records, records
    for r in records:
        assert isinstance(r.value, bytes) and r.value, r
        assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in r.headers), r.headers
    ctype = content_type(dict(headers))
    if all(r.topic == topics.LEDGER_OPS for r in records):
        _check_routed(records, value, ctype, src, partitions)
        return "routed"
    assert sorted(r.topic for r in records) in ([topics.REJECTED], [topics.REJECTED, topics.RESULTS]), \
        [r.topic for r in records]
    [dead] = [r for r in records if r.topic == topics.REJECTED]
    assert dead.key == key and dead.partition is None
    assert dict(dead.headers) == {"content-type": AVRO.encode()}
    rec = avro.decode_record("rejected", dead.value)
    seen = check_dead_letter(rec, value, headers, src.topic, src.partition, src.offset, max_bytes)
    assert rec["rejected_at"] == message_time(src.timestamp_ms)
    want = expected_answer(seen, rec["reason"])
    answers = [r for r in records if r.topic == topics.RESULTS]
    if want is None:
        assert answers == [], (seen, answers)
        return "rejected"
    assert len(answers) == 1, (seen, rec["reason"])
    [answer] = answers
    reply = AVRO if ctype == AVRO else JSON
    assert answer.key == answer_key(seen) and answer.partition is None
    assert dict(answer.headers) == {"content-type": reply.encode()}
    got = avro.decode_result(answer.value) if reply == AVRO else json.loads(answer.value.decode("utf-8"))
    assert got == want
    return "answered"


def _check_routed(records, value, ctype: str, src: Source, partitions: int) -> None:
    event = EVENT.validate_json(value) if ctype == JSON else avro.decode_event(value)  # routed only if valid
    assert not hasattr(event, "reason"), event
    if event.infno == "institution":
        assert [r.partition for r in records] == list(range(partitions))
        assert all(r.key == b"*" for r in records)
    else:
        [r] = records
        psn_no = getattr(event.input, "data", event.input).psn_no
        where = COORDINATOR if event.infno in BINDINGS else home(psn_no, partitions)  # binds: groups are placed there
        assert r.partition == where and r.key == psn_no.encode("utf-8"), (r.partition, r.key, psn_no)
    for i, r in enumerate(records):
        op = avro.decode_record("ledger_op", r.value)
        assert op["body"] == value and op["content_type"] == ctype
        assert (op["source_topic"], op["source_partition"], op["source_offset"], op["source_timestamp"]) == \
            (src.topic, src.partition, src.offset, src.timestamp_ms)
        assert op["group"] == ("*" if event.infno == "institution" else r.key.decode("utf-8"))
        assert op["ack"] == (i == 0)


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_every_hand_written_category_is_routed_or_dead_lettered_as_the_contract_says(category):
    """Each item also meets its own expectation: rejected / routed, and the reason names the problem."""
    items = categories("R", only=category)[category]
    failures, outcomes = [], Counter()
    for i, h in enumerate(items):
        src = Source(topics.REQUESTS, i % 7, 10_000 + i, 1730451600000 + i)
        try:
            outcome = check_route(h.value, h.key, h.headers, src, 4, MAX_BYTES)
            if h.expect == "reject":
                assert outcome != "routed", "routed, but it is not a valid event"
            if h.expect == "route":
                assert outcome == "routed", "dead-lettered, but it is a valid event"
            if h.reason and outcome != "routed":
                [dead] = [r for r in route(h.value, h.key, dict(h.headers), src, 4, MAX_BYTES)
                          if r.topic == topics.REJECTED]
                reason = avro.decode_record("rejected", dead.value)["reason"]
                assert h.reason in reason, f"the reason {reason!r} does not name {h.reason!r}"
            outcomes[outcome] += 1
        except Exception as e:  # collect every broken item of the category, not just the first
            failures.append(f"{h.name}: {type(e).__name__}: {str(e)[:300]}")
    print(f"\n{category}: {len(items)} messages checked: {dict(outcomes)}")
    assert not failures, f"{len(failures)} of {len(items)} {category} messages broke the contract:\n" + \
        "\n".join(failures)


def test_a_4400_digit_amount_with_msgid_and_fixmedins_code_gets_an_error_result():
    doc = bill("FZ-4400", amount="1")
    value = dumps(doc).replace(b'"det_item_fee_sumamt":1', b'"det_item_fee_sumamt":' + b"9" * 4400)
    assert b"9" * 4400 in value
    records = route(value, b"k", {"content-type": b"application/json"}, SRC, 4, MAX_BYTES)
    [answer] = [r for r in records if r.topic == topics.RESULTS]
    got = json.loads(answer.value)
    assert (got["inf_refmsgid"], got["infno"], got["infcode"]) == ("FZ-4400", "2207", -1)
    assert got["err_msg"].startswith("BAD_EVENT: ") and answer.key == b"H53010100001"
    assert check_route(value, b"k", {"content-type": b"application/json"}, SRC, 4, MAX_BYTES) == "answered"
    print("\n1 message checked")


@pytest.mark.parametrize("field", ["msgid", "infno", "fixmedins_code"])
def test_a_lone_surrogate_is_escaped_in_the_dead_letter_and_the_answer(field):
    doc = bill("FZ-SURROGATE")
    doc[field] = "\ud800" if field == "infno" else doc[field] + "\ud800"
    value = dumps(doc)  # the surrogate JSON-escaped: \ud800
    assert b"\\ud800" in value
    records = route(value, b"k", {}, SRC, 4, MAX_BYTES)
    dead = avro.decode_record("rejected", next(r.value for r in records if r.topic == topics.REJECTED))
    [answer] = [r for r in records if r.topic == topics.RESULTS]
    got = json.loads(answer.value.decode("utf-8"))
    assert "escaped" in dead["reason"] and field in dead["reason"]
    assert got["err_msg"] == f"BAD_EVENT: {dead['reason']}"
    assert (got["inf_refmsgid"], got["infno"], answer.key) == (
        escape(doc["msgid"]), escape(doc["infno"]), escape(doc["fixmedins_code"]).encode())
    assert dead["msgid"] == escape(doc["msgid"]) and dead["original"] == value
    print("\n1 message checked")


def test_avro_requests_are_answered_in_avro_and_huge_valid_amounts_are_routed():
    """An Avro request that decodes but is invalid gets an Avro answer; 10,000 lines of the largest
    amount (a 16-digit bill) is a valid event, routed whole."""
    neg = bill("FZ-AVRO-NEG")
    neg["input"]["feedetail"][0]["det_item_fee_sumamt"] = Decimal("-5.00")
    records = route(avro.encode_request(neg), b"k", {"content-type": b"avro/binary"}, SRC, 4, MAX_BYTES)
    [answer] = [r for r in records if r.topic == topics.RESULTS]
    assert dict(answer.headers) == {"content-type": b"avro/binary"}
    got = avro.decode_result(answer.value)
    assert got["inf_refmsgid"] == "FZ-AVRO-NEG" and got["infcode"] == -1
    assert "det_item_fee_sumamt" in got["err_msg"]
    big = avro.encode_request(settlement([line("9999999999.99")] * 10_000, psn_no=NOBODY, msgid="FZ-AVRO-BIG"))
    assert check_route(big, b"k", {"content-type": b"avro/binary"}, SRC, 4, MAX_BYTES) == "routed"
    print("\n2 messages checked")


def test_route_keeps_the_contract_for_any_message():
    """Hypothesis: any value, key, headers, source, partition count and size limit."""
    outcomes = Counter()

    @SETTINGS
    @given(messages(), sources, st.integers(1, 16), st.sampled_from([MAX_BYTES, MAX_BYTES, MAX_BYTES, 0, 16, 300]))
    def one(message, src, partitions, max_bytes):
        value, key, headers = message
        outcomes[check_route(value, key, headers, src, partitions, max_bytes)] += 1

    one()
    print(f"\nhypothesis: {sum(outcomes.values())} messages checked: {dict(outcomes)}")
    assert outcomes["routed"] and outcomes["rejected"] and outcomes["answered"], outcomes  # the generator reaches every path


def test_hostile_numbers_anywhere_in_an_event_never_escape_the_router():
    """Hypothesis: one number literal (NaN, 1e400, 4,400 digits, ...) put at any place of a valid event."""
    count = Counter()

    @SETTINGS
    @given(st.sampled_from(ROUTER_BASES), st.data(), st.sampled_from(LITERALS))
    def one(base, data, literal):
        doc = copy.deepcopy(base)
        _set(doc, data.draw(st.sampled_from(_paths(doc))), Raw(literal))
        count[check_route(dumps(doc), b"k", {}, SRC, 4, MAX_BYTES)] += 1

    one()
    print(f"\nhypothesis: {sum(count.values())} messages checked: {dict(count)}")
    assert count["answered"], count
