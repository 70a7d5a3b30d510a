"""The service over the real embedded broker: same results as offline, duplicates, poison."""
import json
import time
from decimal import Decimal
from pathlib import Path

from schemas import avro
from schemas.serde import encode
from tests.integration.harness import offline, produce, read_all, send
from tests.support import hospitals, line, person, settlement

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.jsonl"


def test_streaming_results_are_byte_identical_to_offline(broker, worker, tmp_path):
    lines = DEMO.read_bytes().splitlines()
    valid = lines[:-1]  # the demo's last line is deliberately invalid
    results = send(broker.bootstrap, valid, tmp_path)
    expected = offline(valid)
    for raw, want in zip(valid, expected):
        assert results[json.loads(raw)["msgid"]] == want


def _population(prefix: str, people: int, per_person: int) -> tuple[list[dict], list[dict]]:
    persons = [person(f"{prefix}{i:04d}", balc="500", retired=i % 2 == 0) for i in range(people)]
    bills = [settlement([line(f"{100 + j}.{i % 100:02d}"), line("20", "02")], psn_no=f"{prefix}{i:04d}",
                        level=1 + j % 3, acct_used_flag=str(j % 2), day=f"2024-11-{1 + j % 28:02d}")
             for i in range(people) for j in range(per_person)]
    return persons, bills


def test_resending_1000_settled_requests_changes_nothing(broker, worker, tmp_path):
    persons, bills = _population("DUP", 50, 20)
    first = send(broker.bootstrap, persons + bills, tmp_path)
    again = send(broker.bootstrap, bills, tmp_path)
    assert len(bills) == 1000
    assert all(again[b["msgid"]] == first[b["msgid"]] for b in bills)
    probes = [settlement([line("300")], psn_no=p["input"]["psn_no"], acct_used_flag="1") for p in persons]
    got = send(broker.bootstrap, probes, tmp_path)
    want = offline(hospitals() + persons + bills + probes)[-len(probes):]
    assert [got[p["msgid"]] for p in probes] == want  # balances and totals as if nothing was re-sent


def _rejected(broker) -> list[dict]:
    return [avro.decode_record("rejected", r.value) for r in read_all(broker.bootstrap, "settle.rejected")]


def test_poison_lands_in_rejected_with_a_reason_and_the_worker_goes_on(broker, worker, tmp_path):
    json_h = [("content-type", b"application/json")]
    negative = settlement([line("10")], msgid="POISON-NEG")
    negative["input"]["feedetail"][0]["det_item_fee_sumamt"] = Decimal("-10")
    missing = settlement([line("10")], msgid="POISON-MISSING")
    del missing["input"]["data"]["psn_no"]
    stranger = settlement([line("10")], psn_no="NOBODY0000001", msgid="POISON-STRANGER")
    produce(broker.bootstrap, [
        ("settle.requests", b"k1", b"\x00\x01not json at all\xff", json_h),
        ("settle.requests", b"k2", b'{"infno":"2207","msgid":"POISON-SCHEMA","fixmedins_code":"H53010100001","input":[1,2]}', json_h),
        ("settle.requests", b"k3", encode(missing), json_h),
        ("settle.requests", b"k4", encode(negative), json_h),
        ("settle.requests", b"k5", b"{" + b" " * 10_000_000 + b"}", json_h),
        ("settle.requests", b"k6", b'{"infno":"2207"}', [("content-type", b"text/csv")]),
    ])
    results = send(broker.bootstrap, [person("POISONOK0001"), stranger,
                                      settlement([line("100")], psn_no="POISONOK0001", msgid="AFTER-POISON")], tmp_path)
    assert json.loads(results["AFTER-POISON"])["infcode"] == 0
    assert json.loads(results["POISON-STRANGER"])["err_msg"].startswith("UNKNOWN_PERSON")
    records = _rejected(broker)
    reasons = [r["reason"] for r in records]
    expected = ["not JSON", "input: Input should be an object", "input.data.psn_no: Field required",
                "input.feedetail[0].det_item_fee_sumamt: Input should be greater than or equal to 0",
                "exceeds the limit of 1000000 bytes", "content-type 'text/csv' is not supported",
                "UNKNOWN_PERSON"]
    for fragment in expected:
        assert any(fragment in r for r in reasons), (fragment, reasons)
    by_msgid = {r["msgid"]: r for r in records}
    assert by_msgid["POISON-NEG"]["original"] == encode(negative)  # the original bytes, untouched
    assert by_msgid["POISON-NEG"]["source_topic"] == "settle.requests"
    assert by_msgid["POISON-STRANGER"]["reason"].startswith("UNKNOWN_PERSON")
    huge = next(r for r in records if "exceeds the limit" in r["reason"])
    assert huge["original_size"] == len(huge["original"]) == 10_000_002
    errors = {json.loads(r.value)["inf_refmsgid"]: json.loads(r.value)
              for r in read_all(broker.bootstrap, "settle.results") if r.value.startswith(b"{")}
    assert errors["POISON-NEG"]["infcode"] == -1 and errors["POISON-SCHEMA"]["infcode"] == -1


def test_an_avro_request_gets_its_result_in_avro(broker, worker, tmp_path):
    who = [person("AVRO00000001", retired=True, brdy="1952-01-15")]
    send(broker.bootstrap, who, tmp_path)
    bill = settlement([line("400"), line("100", "02")], psn_no="AVRO00000001", level=1, msgid="AVRO-2207-1")
    produce(broker.bootstrap, [("settle.requests", b"AVRO00000001", avro.encode_request(bill),
                                [("content-type", b"avro/binary")])])
    deadline = time.monotonic() + 60
    found = None
    while found is None and time.monotonic() < deadline:
        for r in read_all(broker.bootstrap, "settle.results", idle=0.5):
            if dict(r.headers).get("content-type") == b"avro/binary":
                doc = avro.decode_result(r.value)
                if doc["inf_refmsgid"] == "AVRO-2207-1":
                    found = doc
    expected = json.loads(offline(hospitals() + who + [bill])[-1], parse_float=Decimal)
    assert found == expected
    assert found["output"]["setlinfo"]["hifp_pay"] == Decimal("332.50")  # seed 001 问题四, level 1
