"""The router's and the partition ledgers' decisions, without a broker (streams/routing.py, partitions.py)."""
import dataclasses
import json
from decimal import Decimal

from schemas import avro
from schemas.serde import encode
from streams import codec, topics
from streams.partitions import PartitionLedgers
from streams.routing import COORDINATOR, Source, Validated, home, route
from tests.support import BOOK, hospitals, line, person, settlement

SRC = Source("settle.requests", 2, 41, 1730451600000)
JSON = {"content-type": b"application/json"}


def _route(event, headers=JSON, partitions=4, offset=41):
    value = event if isinstance(event, bytes) else encode(event)
    return route(value, b"k", headers, dataclasses.replace(SRC, offset=offset), partitions, 1_000_000)


def test_a_settlement_goes_to_its_persons_home_partition_with_its_source():
    event = settlement([line("100")], psn_no="530102195001010011")
    [record] = _route(event)
    assert (record.topic, record.key, record.partition) == (topics.LEDGER_OPS, b"530102195001010011",
                                                            home("530102195001010011", 4))
    op = codec.decode_record("ledger_op", record.value)
    assert op["body"] == encode(event) and op["content_type"] == "application/json" and op["ack"]
    assert (op["source_topic"], op["source_partition"], op["source_offset"]) == ("settle.requests", 2, 41)


def test_an_institution_is_copied_to_every_partition_and_answered_once():
    records = _route(hospitals()[0], partitions=3)
    assert [r.partition for r in records] == [0, 1, 2]
    assert [codec.decode_record("ledger_op", r.value)["ack"] for r in records] == [True, False, False]


def test_invalid_input_is_rejected_with_its_bytes_and_answered_when_it_names_its_sender():
    event = settlement([line("100")], msgid="BAD-1")
    event["input"]["feedetail"][0]["det_item_fee_sumamt"] = Decimal("-1")
    dlq, answer = _route(event)
    rec = codec.decode_record("rejected", dlq.value)
    assert rec["original"] == encode(event) and rec["msgid"] == "BAD-1"
    assert rec["reason"].startswith("input.feedetail[0].det_item_fee_sumamt")
    assert rec["rejected_at"] == "2024-11-01T09:00:00.000Z"  # the message's timestamp, not the clock
    assert answer.topic == topics.RESULTS and answer.key == b"H53010100001"
    assert answer.value.startswith(b'{"infno":"2207","inf_refmsgid":"BAD-1","infcode":-1,"err_msg":"BAD_EVENT: input.')


def test_unreadable_or_oversized_input_is_only_dead_lettered():
    [garbage] = _route(b"\xff\xfe")
    assert codec.decode_record("rejected", garbage.value)["reason"].startswith("not JSON")
    [big] = route(b"{" + b" " * 2_000_000 + b"}", None, JSON, SRC, 4, 1_000_000)
    assert "exceeds the limit of 1000000 bytes" in codec.decode_record("rejected", big.value)["reason"]
    [csv] = _route(settlement([line("1")]), {"content-type": b"text/csv"})
    assert "not supported" in codec.decode_record("rejected", csv.value)["reason"]


def test_avro_requests_are_routed_like_json():
    event = settlement([line("100")], psn_no="P1")
    [record] = _route(avro.encode_request(event), {"content-type": b"avro/binary"})
    assert codec.decode_record("ledger_op", record.value)["content_type"] == "avro/binary"


_offsets = iter(range(1000, 10**9))


def _op(event) -> bytes:
    [record] = _route(event, offset=next(_offsets))
    return record.value


def test_partition_ledger_answers_dead_letters_unknown_people_and_writes_clearing_entries():
    ledgers = PartitionLedgers(BOOK, 1)
    ledgers.reset(0)
    hospital = _route(hospitals()[0], partitions=1)[0].value
    ledgers.apply(0, 0, hospital)
    stranger = ledgers.apply(0, 1, _op(settlement([line("100")], psn_no="NOBODY")))
    assert [r.topic for r in stranger] == [topics.RESULTS, topics.REJECTED]
    ledgers.apply(0, 2, _op(person("P1")))
    out = ledgers.apply(0, 3, _op(settlement([line("100")], psn_no="P1", level=1)))
    assert [r.topic for r in out] == [topics.RESULTS, topics.CLEARING]
    entry = codec.decode_record("clearing_entry", out[1].value)
    assert entry["fixmedins_code"] == "H53010100001" and entry["fund_pay_sumamt"] == Decimal("48.00")
    assert ledgers.in_sequence(0, 4) and not ledgers.in_sequence(0, 7)


def test_replay_emits_nothing_and_rebuilds_the_same_state():
    ops = [_route(hospitals()[0], partitions=1)[0].value, _op(person("P2", balc="100")),
           _op(settlement([line("300")], psn_no="P2", acct_used_flag="1"))]
    live, replay = PartitionLedgers(BOOK, 1), PartitionLedgers(BOOK, 1)
    live.reset(0)
    replay.reset(0)
    for offset, op in enumerate(ops):
        assert live.apply(0, offset, op)
        assert replay.apply(0, offset, op, emit=False) == []
    assert live.states[0].ledger.snapshot() == replay.states[0].ledger.snapshot()


DEEP = b'{"infno":"2207","msgid":"DEEP-1","fixmedins_code":"H53010100001","input":' + b"[" * 5000 + b"]" * 5000 + b"}"
SURROGATE = (b'{"infno":"2207","msgid":"SUR-\\ud800","fixmedins_code":"H5301\\udfff","input":{}}')


def test_json_nested_5000_deep_is_dead_lettered_not_raised():
    [dlq] = _route(DEEP)
    rec = codec.decode_record("rejected", dlq.value)
    assert rec["original"] == DEEP and rec["reason"] == "not JSON: nested too deeply"


def test_lone_surrogates_are_escaped_in_the_rejection_and_the_answer_and_the_reason_says_so():
    dlq, answer = _route(SURROGATE)
    rec = codec.decode_record("rejected", dlq.value)
    assert rec["original"] == SURROGATE
    assert rec["msgid"] == "SUR-\\ud800"  # backslash escape: the text can be written and read back
    assert rec["reason"].endswith("(msgid, fixmedins_code escaped: not encodable as UTF-8)")
    assert answer.key == b"H5301\\udfff"
    assert answer.value.startswith(b'{"infno":"2207","inf_refmsgid":"SUR-\\\\ud800","infcode":-1,')


def test_an_amount_of_4400_digits_is_answered_to_its_sender():
    event = encode(settlement([line("100")], msgid="HUGE-1")).replace(b'"det_item_fee_sumamt":100', b'"det_item_fee_sumamt":' + b"9" * 4400)
    assert b"9" * 4400 in event
    dlq, answer = _route(event)
    assert codec.decode_record("rejected", dlq.value)["msgid"] == "HUGE-1"
    result = json.loads(answer.value)
    assert result["inf_refmsgid"] == "HUGE-1" and result["infcode"] == -1


def test_whatever_the_router_did_not_foresee_is_dead_lettered_with_its_bytes(monkeypatch):
    def broken(value, ctype):
        raise KeyError("a bug")
    monkeypatch.setattr(codec, "decode", broken)
    value = encode(settlement([line("100")], msgid="BUG-1"))
    [dlq] = _route(value)
    rec = codec.decode_record("rejected", dlq.value)
    assert rec["original"] == value and (rec["partition"], rec["offset"]) == (2, 41)
    assert rec["reason"].startswith("internal error while routing this message (KeyError: 'a bug')")


def test_foreign_bytes_on_ledger_ops_are_dead_lettered_and_the_partition_goes_on():
    ledgers = PartitionLedgers(BOOK, 1)
    ledgers.reset(0)
    [dlq] = ledgers.apply(0, 0, b"\x02garbage", timestamp_ms=1730451600000)
    rec = codec.decode_record("rejected", dlq.value)
    assert (rec["source_topic"], rec["partition"], rec["offset"]) == ("ledger.ops", 0, 0)
    assert rec["reason"].startswith("not a ledger_op record") and rec["original"] == b"\x02garbage"
    assert ledgers.in_sequence(0, 1)


def test_a_binding_goes_to_the_coordinator_which_places_ledger_groups():
    from tests.support import bind
    [op] = _route(bind("530102195001010011", "530102195001010029", "parent", "2024-11-01", msgid="BIND-1"))
    assert (op.topic, op.partition) == (topics.LEDGER_OPS, COORDINATOR)
    assert codec.decode_record("ledger_op", op.value)["kind"] == "coord"


def test_a_router_op_delivered_twice_is_taken_once():
    ledgers = PartitionLedgers(BOOK, 1)
    ledgers.reset(0)
    ledgers.apply(0, 0, _route(hospitals()[0], partitions=1)[0].value)
    ledgers.apply(0, 1, _op(person("P3", balc="100")))
    buy = _op(settlement([line("30")], psn_no="P3", acct_used_flag="1"))
    result, _ = ledgers.apply(0, 2, buy)
    assert json.loads(result.value)["output"]["setlinfo"]["balc"] == 76  # 30 less the pooling's 6
    assert ledgers.apply(0, 3, buy) == []  # the router redid its batch: same source offset
    assert ledgers.states[0].ledger.balances["P3"] == Decimal("76.00")


def test_an_op_of_an_unknown_kind_is_dead_lettered_and_the_partition_goes_on():
    ledgers = PartitionLedgers(BOOK, 1)
    ledgers.reset(0)
    op = codec.decode_record("ledger_op", _op(person("P9")))
    [dlq] = ledgers.apply(0, 0, codec.encode_record("ledger_op", dict(op, kind="teleport")))
    assert codec.decode_record("rejected", dlq.value)["reason"] == "ledger_op kind 'teleport' is unknown"
    assert ledgers.apply(0, 1, _op(person("P9")))  # the next op is taken as usual


def test_a_months_close_goes_to_every_clearing_partition_and_is_answered_once():
    close = {"infno": "clearing_close", "msgid": "CL-1", "input": {"setlym": "2025-03"}}
    ack, *copies = _route(close, partitions=3)
    assert (ack.topic, ack.key, json.loads(ack.value)["output"]) == (topics.RESULTS, b"agency", {"setlym": "2025-03"})
    assert [(r.topic, r.partition, dict(r.headers)["yb-record"]) for r in copies] == \
           [(topics.CLEARING, p, b"ledger_op") for p in range(3)]
    assert {codec.decode_record("ledger_op", r.value)["kind"] for r in copies} == {"clearing_close"}


def test_a_reconciliation_goes_to_its_institutions_clearing_partition():
    recon = {"infno": "3201", "msgid": "R-1", "fixmedins_code": "H53010100001", "input": {
        "stmt_begndate": "2025-03-01", "stmt_enddate": "2025-03-31", "medfee_sumamt": 0, "fund_pay_sumamt": 0,
        "acct_pay": 0, "fixmedins_setl_cnt": 0}}
    [record] = _route(recon)
    assert (record.topic, record.key, record.partition) == (topics.CLEARING, b"H53010100001", home("H53010100001", 4))
    op = codec.decode_record("ledger_op", record.value)
    assert (op["kind"], op["group"], op["body"]) == ("clearing_reconcile", "H53010100001", encode(recon))


def test_the_clearing_partition_answers_a_reconciliation_once_and_dead_letters_foreign_bytes():
    from streams.clearing import PartitionClearing
    recon = {"infno": "3201", "msgid": "R-2", "fixmedins_code": "H53010100001", "input": {
        "stmt_begndate": "2025-03-01", "stmt_enddate": "2025-03-31", "medfee_sumamt": 0, "fund_pay_sumamt": 0,
        "acct_pay": 0, "fixmedins_setl_cnt": 0}}
    [record] = _route(recon, partitions=1)
    clearings = PartitionClearing()
    clearings.reset(0)
    headers = dict(record.headers)
    [answer] = clearings.apply(0, 0, record.value, headers=headers)
    assert json.loads(answer.value)["output"]["stmt_rslt"] == "0"
    assert clearings.apply(0, 1, record.value, headers=headers) == []  # the router's redo: taken once
    [dead] = clearings.apply(0, 2, b"\x00not avro")
    assert dead.topic == topics.REJECTED
    assert "not a clearing record" in codec.decode_record("rejected", dead.value)["reason"]


def test_the_ledger_takes_the_event_its_router_validated_only_for_the_very_bytes_validated(monkeypatch):
    """Validated once: the op whose body is what the router validated is settled from the router's
    event (no second validation); a body that differs at the same source offset (written by anyone
    else) is validated again, and answered for what it says."""
    validated = Validated(10)
    ledgers = PartitionLedgers(BOOK, 1, validated=validated)
    ledgers.reset(0)
    setup = [route(encode(e), b"k", JSON, dataclasses.replace(SRC, offset=i), 1, 1_000_000, validated)[0].value
             for i, e in enumerate([*hospitals()[:1], person("P3", balc="100")])]
    bill = settlement([line("100")], psn_no="P3", level=1, msgid="V-1")
    [record] = route(encode(bill), b"k", JSON, dataclasses.replace(SRC, offset=2), 1, 1_000_000, validated)
    assert len(validated.events) == 3
    decoded = []
    monkeypatch.setattr(codec, "decode", lambda body, ctype, real=codec.decode: decoded.append(body) or real(body, ctype))
    for offset, value in enumerate([*setup, record.value]):
        ledgers.apply(0, offset, value)
    assert decoded == [] and validated.events == {}

    other = settlement([line("7")], psn_no="P3", level=1, msgid="V-2")
    route(encode(bill | {"msgid": "V-2"}), b"k", JSON, dataclasses.replace(SRC, offset=3), 1, 1_000_000, validated)
    op = codec.decode_record("ledger_op", record.value) | {"body": encode(other), "source_offset": 3}
    decoded.clear()  # (the router's own validation of V-2 above)
    [result, _] = ledgers.apply(0, 3, codec.encode_record("ledger_op", op))
    assert decoded == [encode(other)]
    assert json.loads(result.value)["output"]["setlinfo"]["medfee_sumamt"] == 7
