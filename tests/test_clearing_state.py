"""The clearing state the streaming agent keeps (processors/clearing.py `Clearing`), through the offline
path that drives the same code (`yibao settle` with clearing events in the file): a close writes
each institution's statement once, an entry of a closed month counts in the next, flagged, a 3201
says what differs and which settlements are missing, and a property test: statements equal the sum
of the results whatever the settles, cancels and closes."""
import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from connectors.files import settle_lines
from processors.clearing import SUMS, Clearing, Entry, next_month
from processors.ledger import Ledger
from schemas.serde import encode
from tests.support import BOOK, cancel, hospitals, institution, line, person, setlinfo, settlement

OTHER = "H53010199009"


class Recording(Clearing):
    """The clearing, keeping every statement its closes write (the offline path answers a close only)."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[dict] = []

    def close(self, period: str) -> list[dict] | None:
        statements = super().close(period)
        self.written += statements or []
        return statements


def _run(events: list[dict]) -> tuple[list[dict], Recording]:
    clearing = Recording()
    results = [item.result for item in settle_lines([encode(e) for e in events], Ledger(BOOK), clearing)]
    return results, clearing


def _close(month: str, msgid: str = "CLOSE") -> dict:
    return {"infno": "clearing_close", "msgid": msgid, "input": {"setlym": month}}


def _entry(setl_id: str, month: str, amount: str, cancels: str | None = None) -> Entry:
    sign = Decimal(amount)
    return Entry(setl_id, cancels, month, "530100", "530100", OTHER, (sign,) * len(SUMS), f"{month}-15")


def test_a_close_writes_each_institutions_statement_once_with_fund_types():
    bill = settlement([line("500"), line("100", "02")], day="2025-03-05", acct_used_flag="1")
    big = settlement([line("300000")], med_type="21", day="2025-03-20", msgid="IP-1")  # above the 100k cap: 大额 pays
    results, clearing = _run(hospitals() + [person(balc="100"), bill, big])
    infos = [setlinfo(r) for r in results[-2:]]
    [statement] = clearing.close("2025-03")
    assert statement["statement_id"] == f"ST-2025-03-{infos[0]['fixmedins_code']}"
    assert clearing.close("2025-03") is None  # closed already: nothing again
    totals = {k: sum((i[k] for i in infos), Decimal("0.00")) for k in SUMS}
    assert {k: statement[k] for k in SUMS} == totals and statement["settlements"] == 2
    funds = {f["fund_pay_type"]: f["fund_payamt"] for f in statement["fund_pay"]}
    assert funds == {"310100": totals["hifp_pay"], "330100": totals["hifob_pay"]} and totals["hifob_pay"] > 0


def test_an_entry_of_a_closed_month_counts_in_the_next_open_one_flagged():
    clearing = Clearing()
    clearing.add(_entry("S1", "2025-03", "10.00"))
    assert clearing.close("2025-03")[0]["settlements"] == 1
    assert clearing.close("2025-04") == []  # nothing yet in April
    clearing.add(_entry("S2", "2025-03", "5.00"))  # March and April are closed: it counts in May
    clearing.add(_entry("S1", "2025-03", "10.00"))  # a producer's retry: taken once
    [may] = clearing.close("2025-05")
    assert (may["settlements"], may["medfee_sumamt"], may["late"]) == (1, Decimal("5.00"), [{"setl_id": "S2", "setlym": "2025-03"}])
    assert next_month("2025-12") == "2026-01"


def test_a_reconciliation_names_the_difference_and_the_missing_settlements():
    clearing = Clearing()
    for e in (_entry("S1", "2025-03", "10.00"), _entry("S2", "2025-03", "20.00"), _entry("C1", "2025-03", "-10.00", "S1")):
        clearing.add(e)
    span = (dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    right = {"medfee_sumamt": Decimal("20"), "fund_pay_sumamt": Decimal("20"), "acct_pay": Decimal("20"), "fixmedins_setl_cnt": 1}
    ok = clearing.reconcile(OTHER, *span, right, ["S1", "S2", "C1"])
    assert (ok["stmt_rslt"], ok["differences"], ok["missing_in_yibao"], ok["missing_at_institution"]) == ("0", [], [], [])
    assert ok["stmt_rslt_dscr"] == "balanced: 1 settlements, medfee_sumamt 20.00"
    off = clearing.reconcile(OTHER, *span, dict(right, acct_pay=Decimal("25.50")), ["S2", "C1", "S9"])
    assert off["stmt_rslt"] == "1"
    assert off["differences"] == [{"field": "acct_pay", "yibao": "20.00", "institution": "25.50", "difference": "5.50"}]
    assert (off["missing_in_yibao"], off["missing_at_institution"]) == (["S9"], ["S1"])
    assert off["stmt_rslt_dscr"] == ("not balanced: acct_pay institution 25.50 vs yibao 20.00 (difference 5.50); "
                                     "1 not in yibao: S9; 1 not listed by the institution: S1")
    outside = clearing.reconcile(OTHER, dt.date(2025, 4, 1), dt.date(2025, 4, 30), right, None)
    assert outside["fixmedins_setl_cnt"] == 0 and "missing_in_yibao" not in outside


def test_3201_and_close_through_the_offline_path():
    bill = settlement([line("500")], day="2025-03-05", fixmedins_code=OTHER, msgid="B1")
    recon = {"infno": "3201", "msgid": "R1", "fixmedins_code": OTHER, "input": {
        "stmt_begndate": "2025-03-01", "stmt_enddate": "2025-03-31", "medfee_sumamt": 500, "fund_pay_sumamt": 0,
        "acct_pay": 0, "fixmedins_setl_cnt": 1}}
    results, clearing = _run([institution(OTHER, 1), person(), bill, recon, _close("2025-03")])
    info, answer, closed = setlinfo(results[2]), results[3]["output"], results[4]
    assert [d["field"] for d in answer["differences"]] == ["fund_pay_sumamt", "acct_pay"][: len(answer["differences"])]
    assert answer["medfee_sumamt"] == Decimal("500.00") and answer["fund_pay_sumamt"] == info["fund_pay_sumamt"]
    assert closed["output"] == {"setlym": "2025-03"} and "2025-03" in clearing.closed
    bad = dict(recon, msgid="R2", input=dict(recon["input"], stmt_enddate="2025-02-01"))
    assert _run([bad])[0][0]["err_msg"].startswith("BAD_EVENT: line 1: input: stmt_enddate must not be before")


@st.composite
def _stream(draw):
    """Settlements over two institutions and three months, some cancelled, with closes in between."""
    n = draw(st.integers(1, 25))
    events, closes = [], []
    for i in range(n):
        month = draw(st.sampled_from(["2025-03", "2025-04", "2025-05"]))
        code = draw(st.sampled_from(["H53010100001", OTHER]))
        events.append(settlement([line(f"{draw(st.integers(1, 900))}.{draw(st.integers(0, 99)):02d}")],
                                 day=f"{month}-{draw(st.integers(1, 28)):02d}", fixmedins_code=code, msgid=f"P{i}",
                                 acct_used_flag=draw(st.sampled_from(["0", "1"]))))
        if draw(st.booleans()) and draw(st.booleans()):
            events.append(cancel(events[-1], msgid=f"X{i}"))
        if draw(st.integers(0, 9)) == 0:
            events.append(_close(draw(st.sampled_from(["2025-03", "2025-04"])), f"CL{i}"))
    return events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stream())
def test_every_result_is_in_exactly_one_statement_and_they_sum_to_the_results(events):
    setup = hospitals() + [institution(OTHER, 2), person(balc="800")]
    results, clearing = _run(setup + events)
    infos = {setlinfo(r)["setl_id"]: setlinfo(r) for r in results if r["infcode"] == 0 and "setlinfo" in (r["output"] or {})}
    for month in ("2025-03", "2025-04", "2025-05", "2025-06"):
        clearing.close(month)
    statements = clearing.written
    for k in SUMS:
        assert sum((s[k] for s in statements), Decimal("0.00")) == sum((i[k] for i in infos.values()), Decimal("0.00")), k
    assert sum(s["settlements"] + s["cancels"] for s in statements) == len(infos)
    late = [x["setl_id"] for s in statements for x in s["late"]]
    assert len(late) == len(set(late)) and set(late) <= set(infos)
