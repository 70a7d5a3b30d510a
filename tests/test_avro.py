"""Avro on the topics (schemas/avro.py, schemas/avro/*.avsc): every demo event and every demo result
round-trips exactly; the bytes are those of fastavro's own decimal codec on the .avsc as written;
broken schemas and broken bytes fail cleanly."""
from __future__ import annotations

import json
import random
import shutil
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.files import settle_lines
from processors.ledger import Ledger, error
from processors.policy import load_policies
from schemas import avro
from schemas.avro import AvroDecodeError, AvroEncodeError, SchemaError
from schemas.models import EVENT, INFNOS
from schemas.serde import BadEvent, decode_event, encode

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.jsonl"
LINES = [line for line in DEMO.read_bytes().splitlines() if line.strip()]
VALID, INVALID = LINES[:-1], LINES[-1]  # the last line is the deliberately invalid one
SETTLED = list(settle_lines(LINES, Ledger(load_policies())))
RESULTS = [s.result for s in SETTLED]
SCHEMAS = avro.load_schemas()


def exact(line: bytes) -> dict:
    return json.loads(line, parse_float=Decimal)


def fastavro_bytes(name: str, datum) -> bytes:
    """The datum written by fastavro itself, decimals included, against the .avsc as written."""
    out = BytesIO()
    schemaless_writer(out, SCHEMAS[name], datum)
    return out.getvalue()


def fastavro_read(name: str, data: bytes):
    return schemaless_reader(BytesIO(data), SCHEMAS[name], None)


def without_none(value):
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def output_branch(output):
    if output is None:
        return None
    return ("yibao.SettlementOutput" if "setlinfo" in output else "yibao.AckOutput", output)


def ledger_op(body: bytes, content_type: str = "application/json") -> dict:
    return {"group": "530102198503200022", "source_topic": "settle.requests", "source_partition": 3,
            "source_offset": 2**40, "source_timestamp": 1734660000123, "content_type": content_type,
            "body": body, "ack": True, "kind": "import", "via_partition": 5, "via_offset": 2**41, "seq": 3,
            "payload": b'{"move":"settle.requests/3/7"}'}


# -- schemas ------------------------------------------------------------------------------------


def test_schemas_are_parsed_once_and_named_in_yibao():
    assert set(SCHEMAS) == set(avro.SCHEMAS)
    assert avro.load_schemas() is SCHEMAS
    for schema in SCHEMAS.values():
        assert schema["name"].startswith("yibao.")


def test_every_infno_has_an_input_record():
    assert sorted(avro._INPUT_BRANCH) == sorted(INFNOS)


@pytest.mark.parametrize("breakage, says", [
    ('{"type": "record", "name": "SettleResult", "fields": [', "cannot be read as JSON"),
    ('{"type": "record", "name": "SettleResult", "namespace": "yibao", '
     '"fields": [{"name": "infcode", "type": "integr"}]}', "invalid"),
    ('{"type": "record", "name": "SettleResult", "namespace": "yibao", '
     '"fields": [{"name": "infcode", "type": "int", "default": "zero"}]}', "invalid"),
])
def test_a_broken_schema_file_is_named(tmp_path, breakage, says):
    for path in avro.SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path)
    (tmp_path / "settle_result.avsc").write_text(breakage)
    with pytest.raises(SchemaError, match=says) as caught:
        avro.load_schemas(tmp_path)
    assert "settle_result.avsc" in str(caught.value)


def test_a_missing_schema_file_is_named(tmp_path):
    for path in avro.SCHEMA_DIR.glob("*.avsc"):
        if path.name != "ledger_op.avsc":
            shutil.copy(path, tmp_path)
    with pytest.raises(SchemaError, match="ledger_op.avsc"):
        avro.load_schemas(tmp_path)


# -- requests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("line", VALID, ids=[f"line{i}" for i in range(1, len(VALID) + 1)])
def test_demo_event_round_trips(line):
    doc = exact(line)
    data = avro.encode_request(doc)
    back = avro.decode_request(data)
    assert back == doc  # the JSON wire shape: no union record names, absent fields absent
    assert EVENT.validate_python(back) == decode_event(line)  # the same event as the JSON path
    assert avro.decode_event(data) == decode_event(line)
    # plain json.loads (floats) gives the same bytes as exact Decimals
    assert avro.encode_request(json.loads(line)) == data
    # the bytes are what fastavro writes from the .avsc with its own decimal logical type
    tagged = {**back, "input": (avro._INPUT_BRANCH[back["infno"]], back["input"])}
    assert data == fastavro_bytes("settle_request", avro._prepare(SCHEMAS["settle_request"], tagged, ""))
    assert without_none(fastavro_read("settle_request", data)) == back


def test_the_invalid_demo_line_is_refused_as_on_the_json_path():
    data = avro.encode_request(exact(INVALID))  # a negative amount fits Avro; the model refuses it
    refused = avro.decode_event(data)
    assert isinstance(refused, BadEvent)
    assert refused == decode_event(INVALID)
    assert "det_item_fee_sumamt" in refused.reason


def test_request_encoding_names_the_field():
    doc = exact(VALID[14])
    doc["input"]["feedetail"][0]["colour"] = "red"
    with pytest.raises(AvroEncodeError, match=r"input\.feedetail\[0\]\.colour: not a field of FeeDetail"):
        avro.encode_request(doc)
    doc = exact(VALID[14])
    doc["input"]["feedetail"][1]["det_item_fee_sumamt"] = Decimal("1.005")
    with pytest.raises(AvroEncodeError, match=r"input\.feedetail\[1\]\.det_item_fee_sumamt: .* more than 2 decimal"):
        avro.encode_request(doc)
    doc = exact(VALID[14])
    del doc["input"]["data"]["setl_time"]
    with pytest.raises(AvroEncodeError, match=r"input\.data\.setl_time: required, missing"):
        avro.encode_request(doc)
    doc = exact(VALID[0])
    doc["input"]["hosp_lv"] = "1"
    with pytest.raises(AvroEncodeError, match=r"input\.hosp_lv: expected int"):
        avro.encode_request(doc)
    with pytest.raises(AvroEncodeError, match="infno: '9999' is not one of"):
        avro.encode_request({**exact(VALID[0]), "infno": "9999"})


def test_optional_fields_absent_and_null_read_the_same():
    doc = exact(VALID[14])
    nulled = {**doc, "sign_no": None, "input": {**doc["input"], "data": {**doc["input"]["data"], "dise_codg": None}}}
    assert avro.decode_request(avro.encode_request(nulled)) == doc


# -- results ------------------------------------------------------------------------------------


def test_demo_results_round_trip_exactly():
    assert len(RESULTS) == len(LINES)
    extra = [error(None, None, "BAD_EVENT", "not JSON"), {**RESULTS[12], "warn_msg": "a warning"}]
    for result in RESULTS + extra:
        data = avro.encode_result(result)
        back = avro.decode_result(data)
        assert back == result
        assert encode(back) == encode(result)  # the same JSON bytes: Decimal text and key order kept
        assert data == fastavro_bytes("settle_result", {**result, "output": output_branch(result["output"])})
        read = fastavro_read("settle_result", data)
        assert {**read, "output": without_none(read["output"])} == result


def test_results_cover_acks_settlements_cancels_and_refusals():
    kinds = {r["infno"] for r in RESULTS}
    assert {"institution", "person", "2503", "accumulators", "2207", "2304", "2102", "2305"} <= kinds
    cancel = next(r for r in RESULTS if r["infno"] == "2305")["output"]["setlinfo"]
    assert cancel["init_setl_id"] and "setl_proc_info" not in cancel
    assert cancel["medfee_sumamt"] < 0 and cancel["acct_pay"] < 0
    back = avro.decode_result(avro.encode_result(next(r for r in RESULTS if r["infno"] == "2305")))
    assert str(back["output"]["setlinfo"]["hifp_pay"]) == str(cancel["hifp_pay"]) == "-21296.00"
    assert str(back["output"]["setlinfo"]["pool_prop_selfpay"]) == str(cancel["pool_prop_selfpay"])
    assert RESULTS[-1]["infcode"] == -1 and avro.decode_result(avro.encode_result(RESULTS[-1])) == RESULTS[-1]


def test_a_result_the_schema_does_not_cover_is_an_error():
    settled = next(r for r in RESULTS if r["infno"] == "2207")

    def with_setlinfo(**changes):
        info = {**settled["output"]["setlinfo"], **changes}
        return {**settled, "output": {**settled["output"], "setlinfo": info}}

    with pytest.raises(AvroEncodeError, match="new_field"):
        avro.encode_result(with_setlinfo(new_field="x"))
    with pytest.raises(AvroEncodeError, match=r"setlinfo\.hifp_pay: 1\.005 has more than 2 decimal places"):
        avro.encode_result(with_setlinfo(hifp_pay=Decimal("1.005")))
    with pytest.raises(AvroEncodeError, match=r"setlinfo\.acct_pay: expected a Decimal, got float"):
        avro.encode_result(with_setlinfo(acct_pay=1.5))
    with pytest.raises(AvroEncodeError, match="more than 16 digits"):
        avro.encode_result(with_setlinfo(balc=Decimal("1E+20")))
    ack = RESULTS[4]
    with pytest.raises(AvroEncodeError, match="surprise"):
        avro.encode_result({**ack, "output": {**ack["output"], "surprise": "1"}})


# -- decimals: the hand-written codec writes and reads what fastavro's logical type does ------------

MONEY = ("medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "hifob_pay", "maf_pay", "acct_pay", "acct_mulaid_pay",
         "psn_cash_pay")
money = st.decimals(min_value=Decimal("-99999999999999.99"), max_value=Decimal("99999999999999.99"), places=2)


@settings(max_examples=300, deadline=None)
@given(amounts=st.lists(money, min_size=len(MONEY), max_size=len(MONEY)), pkg=st.none() | money)
def test_decimal_bytes_are_fastavros(amounts, pkg):
    entry = clearing_entry(amounts, pkg)
    data = avro.encode_record("clearing_entry", entry)
    assert data == fastavro_bytes("clearing_entry", entry)
    back = avro.decode_record("clearing_entry", data)
    assert back == entry == fastavro_read("clearing_entry", data)
    assert [str(back[k]) for k in MONEY] == [str(fastavro_read("clearing_entry", data)[k]) for k in MONEY]




def clearing_entry(amounts, pkg=None) -> dict:
    return {"setl_id": "S1", "init_setl_id": None, "msgid": "M1", "fixmedins_code": "H1", "insuplc_admdvs": "530100",
            "mdtrtarea_admvs": None, "psn_no": "P1", "insutype": "310", "clr_type": "11",
            "setl_time": "2024-11-01 09:00:00", **dict(zip(MONEY, amounts)), "pkg_surplus_pay": pkg,
            "policy_id": "yunnan-2024-11"}


# -- broken bytes -------------------------------------------------------------------------------


def samples() -> list[tuple[str, bytes]]:
    settlement = next(r for r in RESULTS if r["infno"] == "2304")
    return [
        ("request", avro.encode_request(exact(VALID[20]))),
        ("result", avro.encode_result(settlement)),
        ("ledger_op", avro.encode_record("ledger_op", ledger_op(VALID[20]))),
    ]


def decode(kind: str, data: bytes):
    if kind == "request":
        return avro.decode_request(data)
    if kind == "result":
        return avro.decode_result(data)
    return avro.decode_record(kind, data)


@pytest.mark.parametrize("kind, data", samples(), ids=lambda v: v if isinstance(v, str) else "")
def test_truncated_or_padded_bytes_raise_avro_decode_error(kind, data):
    decode(kind, data)
    for cut in range(len(data)):
        with pytest.raises(AvroDecodeError, match="not a .* Avro datum"):
            decode(kind, data[:cut])
    with pytest.raises(AvroDecodeError, match="1 bytes left over"):
        decode(kind, data + b"\x00")


@pytest.mark.parametrize("kind", ["request", "result", "rejected", "ledger_op", "clearing_entry"])
def test_garbage_raises_only_avro_decode_error(kind):
    rng = random.Random(f"garbage-{kind}")
    for _ in range(1500):
        blob = rng.randbytes(rng.randrange(0, 200))
        try:
            decode(kind, blob)
        except AvroDecodeError:
            pass
    for blob in (VALID[14], b"", b"\xff" * 64, "not bytes"):
        with pytest.raises(AvroDecodeError):
            decode(kind, blob)


@pytest.mark.parametrize("kind, data", samples(), ids=lambda v: v if isinstance(v, str) else "")
def test_corrupted_bytes_raise_only_avro_decode_error(kind, data):
    rng = random.Random(f"corrupt-{kind}")
    for _ in range(1500):
        blob = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        try:
            decode(kind, bytes(blob))  # may still read as some datum; then pydantic judges it
        except AvroDecodeError:
            pass


def test_unreadable_avro_is_a_bad_event():
    refused = avro.decode_event(VALID[14])  # JSON sent as Avro
    assert isinstance(refused, BadEvent) and refused.infno is None
    assert refused.reason.startswith("not a settle_request Avro datum")


# -- rejected, ledger_op, clearing_entry ----------------------------------------------------------


def test_ledger_ops_round_trip():
    for line in VALID:
        for op in (ledger_op(line), ledger_op(avro.encode_request(exact(line)), avro.CONTENT_TYPE)):
            assert avro.decode_record("ledger_op", avro.encode_record("ledger_op", op)) == op


def test_rejected_round_trips():
    bad = decode_event(INVALID)
    records = [
        {"original": INVALID, "source_topic": "settle.requests", "partition": 0, "offset": 30,
         "content_type": "application/json", "original_size": len(INVALID), "reason": bad.reason, "infno": bad.infno, "msgid": bad.msgid,
         "rejected_at": avro.message_time(1734660000123)},
        {"original": b"\xff\x00garbage", "source_topic": "insured.commands", "partition": 2, "offset": 0,
         "content_type": None, "original_size": 9, "reason": "not a settle_request Avro datum", "infno": None, "msgid": None,
         "rejected_at": avro.message_time(0)},
    ]
    for record in records:
        assert avro.decode_record("rejected", avro.encode_record("rejected", record)) == record
    with pytest.raises(AvroEncodeError, match="reason"):
        avro.encode_record("rejected", {k: v for k, v in records[0].items() if k != "reason"})


def test_clearing_entries_of_the_demo_round_trip():
    entries = []
    for settled in SETTLED:
        info = (settled.result["output"] or {}).get("setlinfo") if settled.result["infcode"] == 0 else None
        if info is None:
            continue
        event = settled.event
        entries.append({
            "setl_id": info["setl_id"], "init_setl_id": info.get("init_setl_id"), "msgid": event.msgid,
            "fixmedins_code": info["fixmedins_code"], "insuplc_admdvs": event.insuplc_admdvs,
            "mdtrtarea_admvs": event.mdtrtarea_admvs, "psn_no": info["psn_no"], "insutype": info["insutype"],
            "clr_type": info["clr_type"], "setl_time": info["setl_time"], **{k: info[k] for k in MONEY},
            "pkg_surplus_pay": info["pkg_surplus_pay"], "policy_id": info["policy_id"],
        })
    assert any(e["init_setl_id"] and e["medfee_sumamt"] < 0 for e in entries)
    for entry in entries:
        back = avro.decode_record("clearing_entry", avro.encode_record("clearing_entry", entry))
        assert back == entry and encode(back) == encode(entry)
    with pytest.raises(AvroEncodeError, match="extra"):
        avro.encode_record("clearing_entry", {**entries[0], "extra": 1})


def test_only_the_plain_records_go_through_encode_record():
    with pytest.raises(ValueError, match="own codecs"):
        avro.encode_record("settle_result", RESULTS[0])


def test_message_time_is_the_kafka_timestamp_in_utc():
    assert avro.message_time(0) == "1970-01-01T00:00:00.000Z"
    assert avro.message_time(1730422800123) == "2024-11-01T01:00:00.123Z"


def test_family_binding_events_and_drawing_results_round_trip_exactly():
    from tests.support import PHARMACY, bind, cancel, hospitals, line, person, settlement, unbind
    buy = settlement([line("150")], med_type="41", fixmedins_code=PHARMACY, psn_no="FAMU", day="2024-12-01")
    events = hospitals() + [person("FAMU", balc="20"), person("FAMA", balc="100"), person("FAMB", balc="60"),
                            bind("FAMU", "FAMA", "parent", "2024-11-01"), bind("FAMU", "FAMB", "child", "2024-11-01"),
                            buy, cancel(buy), unbind("FAMU", "FAMB", "2024-12-31")]
    ledger = Ledger(load_policies())
    for ev in events[-6:-3] + events[-1:]:  # the bind commands as Avro requests decode to their JSON twins
        assert avro.decode_event(avro.encode_request(ev)) == decode_event(encode(ev))
    results = [item.result for item in settle_lines([encode(e) for e in events], ledger)]
    assert results[-3]["output"]["setlinfo"]["acct_pay_detl"][1]["psn_no"] == "FAMB"
    assert results[-2]["output"]["setlinfo"]["acct_pay_detl"][0]["acct_pay"] == Decimal("-100.00")
    for result in results[-5:]:
        assert result["infcode"] == 0, result
        back = avro.decode_result(avro.encode_result(result))
        assert back == result and encode(back) == encode(result)


def test_an_account_query_and_its_answer_round_trip_exactly():
    from tests.support import PHARMACY, bind, credit, hospitals, line, person, settlement, unbind
    buy = settlement([line("150")], med_type="41", fixmedins_code=PHARMACY, psn_no="QRYU", day="2024-12-01")
    query = {"infno": "acct_query", "msgid": "Q-1", "input": {"psn_no": "QRYA"}}
    events = hospitals() + [person("QRYU", balc="20"), person("QRYA", balc="100"), credit("2024-12", "QRYA", "5000"),
                            bind("QRYU", "QRYA", "parent", "2024-11-01"), buy, unbind("QRYU", "QRYA", "2025-01-01"),
                            query]
    assert avro.decode_event(avro.encode_request(query)) == decode_event(encode(query))
    result = [item.result for item in settle_lines([encode(e) for e in events], Ledger(load_policies()))][-1]
    view = result["output"]
    assert [m["kind"] for m in view["history"]] == ["set", "credit", "mulaid"]
    assert view["authorizes"] == [{"psn_no": "QRYU", "relation": "parent", "begndate": "2024-11-01",
                                   "enddate": "2025-01-01"}]
    back = avro.decode_result(avro.encode_result(result))
    assert back == result and encode(back) == encode(result)
