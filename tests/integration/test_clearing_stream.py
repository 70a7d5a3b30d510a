"""The clearing agent on the real broker: every settlement and cancel booked once per clearing pair
and institution; an institution's 3201 reconciled; a month's close writes each institution's
statement once, equal to the sum of its results; an entry of a closed month counts in the next one,
flagged late; `yibao clearing report` reads the same rows from the service. (Recovery after kill -9,
statements equal to the offline run's: tests/faults/test_clearing_kill.py.)"""
import csv
import json
import time
from decimal import Decimal

from typer.testing import CliRunner

from processors.clearing import SUMS
from schemas import avro
from streams.cli import app
from tests.integration.harness import read_all, send
from tests.support import cancel, institution, line, person, settlement

PARTITIONS = 4  # the harness's worker


def _close(month: str, msgid: str) -> dict:
    return {"infno": "clearing_close", "msgid": msgid, "input": {"setlym": month}}


def _reconcile(code: str, msgid: str, totals: dict, setl_ids: list[str] | None = None, month: str = "2025-03") -> dict:
    data = {"stmt_begndate": f"{month}-01", "stmt_enddate": f"{month}-31", **totals}
    if setl_ids is not None:
        data["setl_ids"] = setl_ids
    return {"infno": "3201", "msgid": msgid, "fixmedins_code": code, "input": data}


def _statements(bootstrap: str, month: str, receipts: int, again: bool = False,
                timeout: float = 60) -> tuple[list[dict], list[dict]]:
    """(statements, receipts) of `month` on clearing.statements, once there are `receipts` receipts
    (with `again`: receipts of a repeated close)."""
    deadline = time.monotonic() + timeout
    while True:
        docs = [avro.decode_record("clearing_statement", r.value) for r in read_all(bootstrap, "clearing.statements", 0.5)]
        mine = [d for d in docs if d["setlym"] == month]
        got = [d for d in mine if d["kind"] == "closed" and (d["again"] or not again)]
        if len(got) >= receipts or time.monotonic() > deadline:
            return [d for d in mine if d["kind"] == "statement"], got
        time.sleep(0.3)


def _booked(bootstrap: str, setl_ids: set[str], timeout: float = 30) -> None:
    """Wait until clearing.entries holds these settlements' entries (they are written with the results)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        have = {avro.decode_record("clearing_entry", r.value)["setl_id"] for r in read_all(bootstrap, "clearing.entries", 0.5)
                if not dict(r.headers or []).get("yb-record")}
        if setl_ids <= have:
            return
        time.sleep(0.3)
    raise TimeoutError("clearing entries did not arrive")


def _info(raw: bytes) -> dict:
    return json.loads(raw, parse_float=Decimal)["output"]["setlinfo"]


def test_statements_reconciliation_close_once_and_late_entries(broker, worker, tmp_path):
    codes = ["H53010199001", "H53010199002"]
    people = [person(f"CLR{i:03d}", balc="300") for i in range(6)]
    bills = [settlement([line(f"{100 + 37 * i}.{i:02d}"), line("50", "02")], psn_no=people[i % 6]["input"]["psn_no"],
                        fixmedins_code=codes[i % 2], day=f"2025-03-{1 + i:02d}", acct_used_flag=str(i % 2),
                        msgid=f"CLR-B{i:03d}") for i in range(20)]
    undo = cancel(bills[4], msgid="CLR-C004")
    setup = [institution(c, 2) for c in codes] + people
    results = send(broker.bootstrap, setup + bills + [undo], tmp_path)
    infos = [_info(results[b["msgid"]]) for b in bills + [undo]]
    _booked(broker.bootstrap, {i["setl_id"] for i in infos})

    # 3201: balanced when the institution's totals and list are right; otherwise what differs and which ids
    first = [i for i in infos if i["fixmedins_code"] == codes[0]]
    totals = {k: str(sum((i[k] for i in first), Decimal("0.00"))) for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")}
    count = sum(-1 if i.get("init_setl_id") else 1 for i in first)
    ok = _reconcile(codes[0], "CLR-R1", {**totals, "fixmedins_setl_cnt": count}, [i["setl_id"] for i in first])
    short = _reconcile(codes[0], "CLR-R2", {**totals, "medfee_sumamt": "1.00", "fixmedins_setl_cnt": count - 1},
                       [i["setl_id"] for i in first[1:]] + ["S-NOT-HERE"])
    answers = send(broker.bootstrap, [ok, short], tmp_path)
    balanced, off = (json.loads(answers[m], parse_float=Decimal) for m in ("CLR-R1", "CLR-R2"))
    assert balanced["output"]["stmt_rslt"] == "0" and balanced["output"]["differences"] == [], balanced
    out = off["output"]
    assert out["stmt_rslt"] == "1"
    assert [d["field"] for d in out["differences"]] == ["medfee_sumamt", "fixmedins_setl_cnt"]
    assert out["differences"][0]["difference"] == str(Decimal("1.00") - Decimal(totals["medfee_sumamt"]))
    assert out["missing_in_yibao"] == ["S-NOT-HERE"] and out["missing_at_institution"] == [first[0]["setl_id"]]

    # close March: one statement per institution, each the sum of its results; closing again adds none
    closed = send(broker.bootstrap, [_close("2025-03", "CLR-CLOSE-1")], tmp_path)
    assert json.loads(closed["CLR-CLOSE-1"])["output"] == {"setlym": "2025-03"}
    statements, receipts = _statements(broker.bootstrap, "2025-03", PARTITIONS)
    assert sorted(r["partition"] for r in receipts) == list(range(PARTITIONS)) and not any(r["again"] for r in receipts)
    mine = {s["fixmedins_code"]: s for s in statements if s["fixmedins_code"] in codes}
    assert sorted(mine) == codes
    for code in codes:
        theirs = [i for i in infos if i["fixmedins_code"] == code]
        for k in SUMS:
            assert mine[code][k] == sum((i[k] for i in theirs), Decimal("0.00")), (code, k)
        assert (mine[code]["settlements"], mine[code]["cancels"]) == (sum(1 for i in theirs if "init_setl_id" not in i),
                                                                     sum(1 for i in theirs if "init_setl_id" in i))
        assert mine[code]["statement_id"] == f"ST-2025-03-{code}" and mine[code]["late"] == []
    send(broker.bootstrap, [_close("2025-03", "CLR-CLOSE-2")], tmp_path)
    again, receipts = _statements(broker.bootstrap, "2025-03", PARTITIONS, again=True)
    assert len(again) == len(statements) and len(receipts) == PARTITIONS

    # a March settlement sent after March closed counts in April, flagged with its own month
    late = settlement([line("88.80")], psn_no="CLR000", fixmedins_code=codes[1], day="2025-03-31", msgid="CLR-LATE")
    late_info = _info(send(broker.bootstrap, [late], tmp_path)["CLR-LATE"])
    _booked(broker.bootstrap, {late_info["setl_id"]})
    send(broker.bootstrap, [_close("2025-04", "CLR-CLOSE-3")], tmp_path)
    april, _ = _statements(broker.bootstrap, "2025-04", PARTITIONS)
    [st] = [s for s in april if s["fixmedins_code"] == codes[1]]
    assert st["late"] == [{"setl_id": late_info["setl_id"], "setlym": "2025-03"}]
    assert (st["settlements"], st["medfee_sumamt"]) == (1, Decimal("88.80"))

    # `yibao clearing report` without a file reads the service's clearing.entries: March's rows as stated
    out = tmp_path / "march.csv"
    shown = CliRunner().invoke(app, ["clearing", "report", "--period", "2025-03", "--bootstrap", broker.bootstrap,
                                     "--csv", str(out)])
    assert shown.exit_code == 0, shown.output
    with out.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["fixmedins_code"] in codes]
    for code in codes:
        [row] = [r for r in rows if r["fixmedins_code"] == code]
        assert {k: Decimal(row[k]) for k in SUMS} == {k: mine[code][k] for k in SUMS}
