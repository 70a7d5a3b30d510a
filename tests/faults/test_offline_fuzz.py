"""Guarantee: `yibao settle FILE -o OUT` exits 0 for any file of hostile lines and writes exactly one
result per non-blank line, in order, each a valid JSON document; a hostile line gets infcode -1 and
the run goes on; and hostile lines change no state: every valid line interleaved with them gets
exactly (byte for byte) the result it gets in the same file without them.

How the tests try to break it: a fixed valid scenario (institutions, people, settlements of every
kind, a cancel) with hostile lines put between its lines — every hand-written category of
tests/faults/corpus.py that makes sense as a file line, the ones that need context (a reused msgid,
cancels of unknown settlements, a settlement in year 0001, a person born 9999-12-31 settling), and
hypothesis-generated lines (mutated events of unknown people, truncations, random bytes and JSON
values, blank lines) at hypothesis-chosen places. The hand-written file also goes through the real
CLI in a subprocess.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.files import settle_lines
from processors.ledger import Ledger
from schemas.serde import encode
from tests.faults.corpus import JSON_H, NOBODY, SEED, Hostile, categories, escape, every, in_context, offline_lines, shown
from tests.support import BOOK, cancel, filing, hospitals, line, person, settlement

ROOT = Path(__file__).resolve().parents[2]
FUTURE = "FZFUTUREOFF00001"
PEOPLE = [person(f"FZOFF{i:04d}", balc="800", retired=i == 1, brdy=f"19{55 + i}-05-0{1 + i}") for i in range(3)]
BILLS = [settlement([line(f"{120 + 17 * i}.{i:02d}"), line("35.50", "02"), line("8", "03")],
                    psn_no=PEOPLE[i % 3]["input"]["psn_no"], msgid=f"FZOFF-B{i:03d}", level=1 + i % 3,
                    acct_used_flag=str(i % 2), day=f"2024-11-{1 + i:02d}", med_type="21" if i % 5 == 4 else "11")
         for i in range(12)]
SCENARIO = hospitals() + PEOPLE + [person(FUTURE, brdy="9999-12-31"), filing("MXB01", psn_no=PEOPLE[2]["input"]["psn_no"])] + BILLS[:6] + \
    [cancel(BILLS[1])] + BILLS[6:]
VALID = [encode(e) for e in SCENARIO]
EXPECTED = [encode(item.result) for item in settle_lines(VALID, Ledger(BOOK))]
assert len(EXPECTED) == len(VALID) and sum(json.loads(r)["infcode"] == 0 for r in EXPECTED) == len(VALID)


def interleave(hostile: list, places: list[int]) -> list:
    """The valid lines (as their index in VALID) with hostile item k put before valid line places[k]."""
    slots: dict[int, list] = {}
    for h, p in zip(hostile, places):
        slots.setdefault(p, []).append(h)
    out = []
    for i in range(len(VALID) + 1):
        out += slots.get(i, [])
        if i < len(VALID):
            out.append(i)
    return out


def split(entries: list, raw=lambda h: h) -> tuple[list[bytes], list[int | None]]:
    """File lines, and for each the index of the valid line it is (None: hostile)."""
    lines = [VALID[e] if isinstance(e, int) else raw(e) for e in entries]
    return lines, [e if isinstance(e, int) else None for e in entries]


def check_file(lines: list[bytes], which: list[int | None], results: list[tuple[int, bytes]],
               hostile: dict[int, Hostile] | None = None) -> int:
    """Assert the offline guarantee for one run; `results` are (lineno, encoded result). Returns the
    number of hostile lines checked; every line that breaks it is listed in the failure."""
    nonblank = [n for n, raw in enumerate(lines, start=1) if raw.strip()]
    assert [n for n, _ in results] == nonblank  # one result per non-blank line, in order
    failures = []
    for lineno, out in results:
        h = (hostile or {}).get(lineno)
        try:
            _check_line(lineno, lines[lineno - 1], which[lineno - 1], out, h)
        except AssertionError as e:
            failures.append(f"line {lineno} ({h.category + ': ' + h.name if h else 'generated'}): "
                            f"{str(e).splitlines()[0][:400]}")
    assert not failures, f"{len(failures)} of {len(results)} lines broke the guarantee:\n" + "\n".join(failures)
    return sum(w is None for n, w in enumerate(which, start=1) if n in nonblank)


def _check_line(lineno: int, raw: bytes, index: int | None, out: bytes, h: Hostile | None) -> None:
    doc = json.loads(out.decode("utf-8"))  # valid JSON, valid UTF-8
    assert set(doc) == {"infno", "inf_refmsgid", "infcode", "err_msg", "warn_msg", "output"}, doc
    if index is not None:
        assert out == EXPECTED[index], f"a valid line's result changed: {out[:300]!r} != {EXPECTED[index][:300]!r}"
        return
    assert doc["infcode"] == -1, f"a hostile line was accepted: {raw[:200]!r} -> {doc}"
    assert isinstance(doc["err_msg"], str) and doc["err_msg"], doc
    if doc["err_msg"].startswith("BAD_EVENT: "):
        assert doc["err_msg"].startswith(f"BAD_EVENT: line {lineno}: "), doc["err_msg"]
        seen = shown(raw, JSON_H, max_bytes=None)
        assert doc["inf_refmsgid"] == (escape(seen.msgid) if seen.msgid else None), (doc, seen)
        assert doc["infno"] == (escape(seen.infno) if seen.infno else None), (doc, seen)
    if h is not None:
        if h.expect == "reject":
            assert doc["err_msg"].startswith("BAD_EVENT: "), f"not refused as a bad event: {doc['err_msg']}"
        if h.expect == "route":
            assert not doc["err_msg"].startswith("BAD_EVENT: "), f"a valid event refused as bad: {doc['err_msg']}"
        if h.code:
            assert doc["err_msg"].startswith(h.code + ": "), f"{doc['err_msg']} is not {h.code}"
        if h.reason:
            assert h.reason in doc["err_msg"], f"{doc['err_msg']} does not name {h.reason}"


def _settle(lines: list[bytes]) -> list[tuple[int, bytes]]:
    return [(item.lineno, encode(item.result)) for item in settle_lines(lines, Ledger(BOOK))]


def _hand_written() -> tuple[list[bytes], list[int | None], dict[int, Hostile]]:
    """Every file-line item of the categories and the context items, at seeded places (seed SEED)."""
    rng = random.Random(SEED)
    plain = [h for h in every("OFF") if h.as_line is not None and h.category != "inexact amounts"]
    _, context = in_context("OFFX", BILLS, PEOPLE[0]["input"]["psn_no"], FUTURE)
    assert all(h.as_line is not None for h in context)
    after = VALID.index(encode(BILLS[2])) + 1  # the context items refer to BILLS[:3]
    places = [rng.randint(0, len(VALID)) for _ in plain] + [rng.randint(after, len(VALID)) for _ in context]
    entries = interleave(plain + context, places)
    lines, which = split(entries, lambda h: h.as_line)
    hostile = {n: e for n, e in enumerate(entries, start=1) if isinstance(e, Hostile)}
    return lines, which, hostile


def test_every_hand_written_hostile_line_is_answered_and_changes_nothing():
    lines, which, hostile = _hand_written()
    results = _settle(lines)
    checked = check_file(lines, which, results, hostile)
    future = [r for n, r in results if n in hostile and "9999-12-31" in (hostile[n].reason or "")]
    assert len(future) == 1 and json.loads(future[0])["infcode"] == -1  # a person born 9999-12-31 cannot settle
    print(f"\n{checked} hostile lines checked, {len(lines) - checked} valid or blank lines around them")


def test_amounts_with_more_than_two_decimals_are_refused_not_rounded():
    """An amount a float would round to 2 decimals (1e-400 -> 0, 100.00000000000000000001 -> 100) is
    refused as a bad event, never settled as the rounded amount (here for a known person)."""
    psn_no = PEOPLE[0]["input"]["psn_no"]
    items = [h.value.replace(NOBODY.encode(), psn_no.encode())
             for h in categories("OFFI", only="inexact amounts")["inexact amounts"]]
    results = _settle(VALID + items)[len(VALID):]
    wrong = []
    for raw, (_, out) in zip(items, results):
        doc = json.loads(out)
        if not (doc["err_msg"] or "").startswith("BAD_EVENT: ") or "det_item_fee_sumamt" not in doc["err_msg"]:
            amount = raw.split(b'"det_item_fee_sumamt":')[1].split(b",")[0]
            settled = (doc["output"] or {}).get("setlinfo", {}).get("medfee_sumamt")
            wrong.append(f"{amount[:30].decode()}: infcode {doc['infcode']}, medfee_sumamt {settled}, {doc['err_msg']}")
    print(f"\n{len(items)} hostile lines checked")
    assert not wrong, f"{len(wrong)} of {len(items)} inexact amounts were not refused:\n" + "\n".join(wrong)


def test_the_cli_exits_0_and_writes_one_json_result_per_line(tmp_path):
    lines, which, hostile = _hand_written()
    events, out = tmp_path / "hostile.jsonl", tmp_path / "results.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    run = subprocess.run([sys.executable, "-m", "streams.cli", "settle", str(events), "-o", str(out)],
                         cwd=ROOT, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
    written = out.read_bytes().split(b"\n")
    assert written[-1] == b""
    assert written[:-1] == [r for _, r in _settle([raw + b"\n" for raw in lines])]  # what settle_lines answers
    nonblank = [n for n, raw in enumerate(lines, start=1) if raw.strip()]
    assert len(written) - 1 == len(nonblank)
    print(f"\n{len(lines)} lines, {len(nonblank)} results, exit 0")


def test_a_person_born_after_the_settlement_date_is_refused_with_a_reason():
    who = person(FUTURE, brdy="9999-12-31")
    bill = settlement([line("100")], psn_no=FUTURE, msgid="FZOFF-FUTURE-1")
    results = [json.loads(r) for _, r in _settle([encode(e) for e in hospitals() + [who, bill]])]
    assert results[-2]["infcode"] == 0  # the person is recorded...
    got = results[-1]  # ...and refused when settling
    assert (got["inf_refmsgid"], got["infcode"], got["output"]) == ("FZOFF-FUTURE-1", -1, None)
    assert "9999-12-31" in got["err_msg"] and not got["err_msg"].startswith("BAD_EVENT")
    print("\n1 settlement checked")


def test_hypothesis_hostile_lines_anywhere_change_nothing():
    counted = []

    @settings(max_examples=150, deadline=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(st.tuples(offline_lines(), st.integers(0, len(VALID))), min_size=1, max_size=12))
    def one(drawn):
        lines, which = split(interleave([raw for raw, _ in drawn], [p for _, p in drawn]))
        counted.append(check_file(lines, which, _settle(lines)))

    one()
    print(f"\nhypothesis: {len(counted)} files, {sum(counted)} hostile lines checked")
    assert sum(counted) > 0
