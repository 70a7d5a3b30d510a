"""Property-based tests of the ledger: results balance, accounts and caps hold, cancels and duplicates
change nothing they should not, and a replay is byte-identical.

Scenarios are realistic event streams: the four institutions of `hospitals()`, one to three employees
(active or retired, aged 30-85 around the settlement dates, some with an account balance, some with
medical assistance), imported year-to-date totals, chronic/special disease filings, settlements of
every med_type between 2024-10-25 and 2025-01-10 (across the 2024-11-01 rule change and a new year),
cancels of earlier settlements, account top-ups and exact re-sends. Everything goes through the
public path (encode -> decode -> Ledger.apply) of `tests.support.run`.
"""
from __future__ import annotations

import copy
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from itertools import count

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from processors.ledger import Ledger
from processors.settlement import MONEY_FIELDS
from schemas.serde import encode
from tests.support import (
    BOOK,
    HOSPITAL,
    PHARMACY,
    accumulators,
    bind,
    cancel,
    credit,
    filing,
    hospitals,
    line,
    person,
    run,
    settlement,
    unbind,
)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ZERO = Decimal("0")
SETTLE_INFNOS = ("2102", "2207", "2304")
CANCEL_INFNOS = ("2103", "2208", "2305")
CANCEL_FOR = {"2207": "2208", "2304": "2305", "2102": "2103"}
CAPS = {"op_pool_paid": Decimal("6000"), "ip_pool_paid": Decimal("100000"), "chronic_pool_paid": Decimal("5000")}
ZERO_FUNDS = ("cvlserv_pay", "hifes_pay", "hifmi_pay", "oth_pay")
DISEASES = [f"MXB{i:02d}" for i in range(1, 26)] + [f"TSB{i:02d}" for i in range(1, 18)]
PSN_NOS = ["530102195001010011", "530102196502020022", "530102198003030033"]
MED_TYPES = ["11", "14", "13", "21", "28", "41", "51", "52", "53", "14", "11"]
FIRST_DAY, LAST_DAY = dt.date(2024, 10, 25), dt.date(2025, 1, 10)
NOT_PAYABLE = ("public_health", "fitness", "wellness", "checkup")  # account.yaml: the account may not pay these

# -- strategies -------------------------------------------------------------------------------


def cents(lo: int, hi: int) -> st.SearchStrategy[Decimal]:
    """Money in yuan with exactly two decimals, from lo to hi fen."""
    return st.integers(lo, hi).map(lambda c: Decimal(c).scaleb(-2))


amounts = st.one_of(cents(1, 50_000), cents(1, 5_000_000))  # 0.01..500 often, up to 50000
days = st.integers(0, (LAST_DAY - FIRST_DAY).days).map(lambda n: (FIRST_DAY + dt.timedelta(n)).isoformat())
# ages 30-85 on the settlement dates, with extra weight on turning 70 in the period
births = st.one_of(st.dates(dt.date(1939, 1, 11), dt.date(1994, 10, 25)),
                   st.dates(dt.date(1954, 10, 1), dt.date(1955, 1, 31)))


@st.composite
def people(draw) -> list[dict]:
    out = []
    for psn_no in PSN_NOS[: draw(st.integers(1, len(PSN_NOS)))]:
        maf = draw(st.none() | st.tuples(st.sampled_from(["deep", "relative"]), cents(0, 6_000_000)))
        out.append({
            "psn_no": psn_no,
            "brdy": draw(births).isoformat(),
            "retired": draw(st.booleans()),
            "balc": draw(st.none() | cents(0, 2_000_000)),
            "gend": draw(st.sampled_from([None, "2", "1"])),
            "maf_lv": maf[0] if maf else None,
            "maf_base_inc": maf[1] if maf else None,
        })
    return out


def person_event(p: dict, msgid: str, balc: Decimal | None = None) -> dict:
    ev = person(p["psn_no"], brdy=p["brdy"], retired=p["retired"],
                balc=balc if balc is not None else p["balc"], gend=p["gend"],
                maf_lv=p["maf_lv"], maf_base_inc=p["maf_base_inc"])
    ev["msgid"] = msgid
    return ev


@st.composite
def fee_lines(draw) -> list[dict]:
    n = draw(st.integers(1, 6))
    lines, services = [], []
    for sn in range(1, n + 1):  # support.settlement numbers the lines 1..n
        kind = draw(st.sampled_from(["drug", "service", "consumable"]))
        extra = {}
        if kind == "drug" and draw(st.integers(0, 4)) == 4:
            extra["nego_drug_flag"] = "1"
        if draw(st.integers(0, 3)) == 3:
            extra["pric_uplmt_amt"] = draw(cents(1, 2_000_000))
            if draw(st.booleans()):
                extra["cnt"] = draw(st.sampled_from([Decimal(c) for c in ("1", "2", "0.5", "3", "10")]))
        if draw(st.integers(0, 7)) == 7:
            extra["fee_ctgy"] = draw(st.sampled_from(["medical", *NOT_PAYABLE]))
        if kind == "consumable" and services and draw(st.booleans()):
            extra["svc_feedetl_sn"] = str(draw(st.sampled_from(services)))
        lv = draw(st.sampled_from(["01", "02", "03"]))
        if kind == "service":
            services.append(sn)
        lines.append(line(draw(amounts), lv, kind, **extra))
    return lines


@st.composite
def settlements(draw, persons: list[dict], msgid: str, filed: dict[str, list[str]] | None = None) -> dict:
    """A settlement of one of `persons`; dise_codg mostly one of the person's `filed` diseases, if any."""
    p = draw(st.sampled_from(persons))
    own = sorted(set((filed or {}).get(p["psn_no"], [])))
    disease = st.sampled_from(own) | st.sampled_from(DISEASES) if own else st.sampled_from(DISEASES)
    med_type = draw(st.sampled_from(MED_TYPES))
    level = draw(st.sampled_from([1, 2, 3]))
    data: dict = {}
    flag = draw(st.sampled_from([None, "0", "1"]))
    if flag is not None:
        data["acct_used_flag"] = flag
    if med_type == "14" and draw(st.integers(0, 5)) > 0:
        data["dise_codg"] = draw(disease)
    if med_type == "41":
        rx = draw(st.sampled_from(["none", "code", "level", "code+level", "unknown code"]))
        if "code" in rx:
            known = HOSPITAL[draw(st.sampled_from([1, 2, 3]))]
            data["rx_fixmedins_code"] = "H99999999999" if rx == "unknown code" else known
        if "level" in rx:
            data["rx_hosp_lv"] = draw(st.sampled_from([1, 2, 3]))
        if draw(st.booleans()):
            data["dise_codg"] = draw(disease)
    if med_type in ("51", "52"):
        matn = draw(st.sampled_from(["1", "2", "3", "4", "5"]))
        data["matn_type"] = matn
        if matn == "4" or draw(st.booleans()):
            data["geso_mons"] = draw(st.integers(0, 11))
        if matn == "5":
            data["art_birth_flag"] = draw(st.sampled_from(["1", "0"]))
        if draw(st.integers(0, 3)) == 3:
            data["fetus_cnt"] = draw(st.integers(1, 3))
        if p["gend"] == "1":
            data["spus_unemp_flag"] = draw(st.sampled_from(["1", "0"]))
    if med_type == "53":
        data["birctrl_type"] = draw(st.sampled_from("123456789"))
        if data["birctrl_type"] == "9" or draw(st.booleans()):
            data["geso_mons"] = draw(st.integers(0, 11))
    lines = draw(fee_lines())
    if draw(st.integers(0, 3)) == 3:
        data["medfee_sumamt"] = sum((l["det_item_fee_sumamt"] for l in lines), Decimal("0.00"))
    ev = settlement(lines, med_type=med_type, day=draw(days), level=level, psn_no=p["psn_no"], msgid=msgid, **data)
    ev["input"]["data"]["mdtrt_id"] = "D" + msgid
    return ev


@st.composite
def imports(draw, psn_no: str, year: int, msgid: str) -> dict:
    """Totals built up elsewhere, within the caps (imported once per person and year, before settling)."""
    totals = {
        "op_pool_paid": draw(cents(0, 600_000)),
        "ip_pool_paid": draw(st.sampled_from([ZERO, Decimal("99990.00")]) | cents(0, 10_000_000)),
        "chronic_pool_paid": draw(cents(0, 500_000)),
        "hifob_paid": draw(cents(0, 1_000_000)),
        "adm_cnt": draw(st.integers(0, 4)),
        "chronic_dedc_paid": draw(cents(0, 30_000)),
        "special_dedc_paid": draw(cents(0, 88_000)),
        "maf_dedc_paid": draw(cents(0, 500_000)),
        "maf_paid": draw(cents(0, 500_000)),
        "art_claimed": draw(st.integers(0, 7)) == 7,
    }
    ev = accumulators(year, psn_no, **{k: v for k, v in totals.items() if v})
    ev["msgid"] = msgid
    return ev


OPS = ["settle"] * 6 + ["cancel"] * 2 + ["filing"] * 2 + ["duplicate", "topup", "credit", "bind", "bind", "unbind"]
RELATIONS = ["parent", "spouse", "child", "sibling", "grandparent", "grandchild"]


@st.composite
def scenarios(draw, max_ops: int = 22) -> tuple[list[dict], list[dict], dict[str, list[str]]]:
    """(people, events, filed diseases): reference data, imports and filings, then a mix of settlements,
    cancels, filings, top-ups and exact re-sends."""
    ids = count(1)

    def mid(prefix: str) -> str:
        return f"{prefix}{next(ids):03d}"

    persons = draw(people())
    events = []
    for ev in hospitals():
        ev["msgid"] = mid("I")
        events.append(ev)
    events += [person_event(p, mid("P")) for p in persons]
    for p in persons:
        for year in (2024, 2025):
            if draw(st.integers(0, 3)) == 3:
                events.append(draw(imports(p["psn_no"], year, mid("A"))))
    settled: list[int] = []
    filed: dict[str, list[str]] = defaultdict(list)
    for p in persons:  # diseases registered before the period
        for code in draw(st.lists(st.sampled_from(DISEASES), max_size=3)):
            filed[p["psn_no"]].append(code)
            ev = filing(code, p["psn_no"], "2024-01-01")
            ev["msgid"] = mid("F")
            events.append(ev)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(OPS))
        if op == "settle":
            settled.append(len(events))
            events.append(draw(settlements(persons, mid("M"), filed)))
        elif op == "cancel" and settled:
            events.append(cancel(events[draw(st.sampled_from(settled))], msgid=mid("C")))
        elif op == "filing":
            p = draw(st.sampled_from(persons))
            code = draw(st.sampled_from(DISEASES))
            filed[p["psn_no"]].append(code)
            ev = filing(code, p["psn_no"], draw(st.just("2024-01-01") | days))
            ev["msgid"] = mid("F")
            events.append(ev)
        elif op == "duplicate":
            events.append(events[draw(st.integers(0, len(events) - 1))])
        elif op == "topup":
            p = draw(st.sampled_from(persons))
            events.append(person_event(p, mid("P"), balc=draw(cents(0, 2_000_000))))
        elif op in ("bind", "unbind") and len(persons) > 1:
            user, auth = draw(st.permutations(persons))[:2]
            ev = (bind(user["psn_no"], auth["psn_no"], draw(st.sampled_from(RELATIONS)), draw(days)) if op == "bind"
                  else unbind(user["psn_no"], auth["psn_no"], draw(days)))
            ev["msgid"] = mid("B")
            events.append(ev)
        elif op == "credit":
            p = draw(st.sampled_from(persons))
            base = draw(st.none() | cents(0, 5_000_000))
            events.append(credit(draw(st.sampled_from(["2024-10", "2024-11", "2024-12", "2025-01"])), p["psn_no"],
                                 None if base is None else str(base), msgid=mid("K")))
    return persons, events, dict(filed)


# -- helpers ----------------------------------------------------------------------------------


def step(ledger: Ledger, event: dict) -> dict:
    """Settle one event through the public path."""
    return run([event], ledger)[0]


def state(ledger: Ledger) -> dict:
    """All of the ledger's state: the snapshot plus reference data and what was answered."""
    return {
        "snapshot": ledger.snapshot(),
        "persons": dict(ledger.persons),
        "institutions": dict(ledger.institutions),
        "registrations": {p: dict(r) for p, r in ledger.registrations.items() if r},
        "settlements": {s: r.cancelled_by for s, r in ledger.settlements.items()},
        "by_msgid": dict(ledger.by_msgid),
        "answered": set(ledger.answered),
    }


def was_answered(ledger: Ledger, ev: dict) -> bool:
    """Whether the ledger remembers a result under this event's msgid, in its person's scope."""
    psn = ev["input"].get("data", ev["input"]).get("psn_no") if isinstance(ev.get("input"), dict) else None
    return (psn, ev["msgid"]) in ledger.answered


def was_answered_before(i: int, events: list[dict]) -> bool:
    """Whether an event identical to the i-th came earlier in the scenario (its re-send re-emits the
    stored result). By position: a scenario may hold the very same dict twice."""
    return any(e == events[i] for e in events[:i])


def is_settlement(ev: dict) -> bool:
    return ev["infno"] in SETTLE_INFNOS


def two_places(value) -> bool:
    return isinstance(value, Decimal) and value.as_tuple().exponent == -2


def assert_balanced(out: dict) -> None:
    i = out["setlinfo"]
    for name in MONEY_FIELDS:
        assert two_places(i[name]), (name, i[name])
        assert i[name] >= 0, (name, i[name])
    assert i["medfee_sumamt"] + i["pkg_surplus_pay"] == i["fund_pay_sumamt"] + i["psn_part_amt"]
    assert i["psn_part_amt"] == i["acct_pay"] + i["acct_mulaid_pay"] + i["psn_cash_pay"]
    for name in ZERO_FUNDS:
        assert i[name] == 0, name
    assert i["fund_pay_sumamt"] == i["hifp_pay"] + i["hifob_pay"] + i["maf_pay"] + sum(i[n] for n in ZERO_FUNDS)
    assert i["medfee_sumamt"] == (i["fulamt_ownpay_amt"] + i["overlmt_selfpay"] + i["preselfpay_amt"]
                                  + i["inscp_scp_amt"])
    rows = out["setldetail"]
    assert sum((r["fund_payamt"] for r in rows), ZERO) == i["fund_pay_sumamt"]
    assert len({r["fund_pay_type"] for r in rows}) == len(rows)
    for r in rows:
        assert two_places(r["fund_payamt"]) and two_places(r["inscp_scp_amt"])
        assert r["fund_payamt"] > 0
        assert r["inscp_scp_amt"] == i["inscp_scp_amt"]


# -- 1. every settlement result balances --------------------------------------------------------


@SETTINGS
@given(scenarios())
def test_every_settlement_result_balances(scenario):
    _, events, _ = scenario
    for ev, res in zip(events, run(events)):
        if is_settlement(ev) and res["infcode"] == 0:
            assert_balanced(res["output"])


# -- 2. no account goes negative ------------------------------------------------------------------


@SETTINGS
@given(scenarios())
def test_no_account_goes_negative(scenario):
    _, events, _ = scenario
    ledger = Ledger(BOOK)
    paid: dict[str, Decimal] = {}  # settlement msgid -> acct_pay
    for ev in events:
        before = dict(ledger.balances)
        answered_before = was_answered(ledger, ev)
        res = step(ledger, ev)
        assert all(b >= 0 for b in ledger.balances.values()), ledger.balances
        if res["infcode"] != 0:
            assert ledger.balances == before
            continue
        out = res["output"]
        info = out.get("setlinfo", out) if isinstance(out, dict) else {}
        if "balc" in info:
            assert info["balc"] >= 0 and two_places(info["balc"])
        if answered_before:  # a re-send: the same result, nothing moves
            assert ledger.balances == before
            continue
        psn = ev.get("input", {}).get("data", {}).get("psn_no")
        if is_settlement(ev):
            acct, flag = info["acct_pay"], ev["input"]["data"].get("acct_used_flag")
            assert acct <= before[psn]
            assert info["balc"] == before[psn] - acct == ledger.balances[psn]
            used = flag == "1" or (flag is None and ev["infno"] == "2102")
            excluded = sum((l["det_item_fee_sumamt"] for l in ev["input"]["feedetail"]
                            if l.get("fee_ctgy") in NOT_PAYABLE), Decimal("0"))
            assert acct == (min(before[psn], max(Decimal("0"), info["psn_part_amt"] - excluded)) if used else 0)
            paid[ev["msgid"]] = acct
        elif ev["infno"] in CANCEL_INFNOS:
            back = paid[ev["input"]["data"]["omsgid"]]
            assert ledger.balances[psn] == before[psn] + back == info["balc"]


@SETTINGS
@given(scenarios())
def test_money_is_conserved_and_every_movement_is_in_the_account_history(scenario):
    """Σ movements since the last balance set = the balance; each movement's balance follows from the
    one before; the account never pays a line of a category it may not pay."""
    persons, events, _ = scenario
    ledger = Ledger(BOOK)
    for i, ev in enumerate(events):
        before = dict(ledger.balances)
        res = step(ledger, ev)
        info = (res.get("output") or {}).get("setlinfo") if res["infcode"] == 0 else None
        if info is not None and ev["infno"] in SETTLE_INFNOS and not was_answered_before(i, events):
            excluded = sum((l["det_item_fee_sumamt"] for l in ev["input"]["feedetail"]
                            if l.get("fee_ctgy") in NOT_PAYABLE), Decimal("0"))
            assert info["acct_pay"] + info["acct_mulaid_pay"] <= max(Decimal("0"), info["psn_part_amt"] - excluded)
            assert info["acct_pay"] + info["acct_mulaid_pay"] + info["psn_cash_pay"] == info["psn_part_amt"]
            drawn = info.get("acct_pay_detl", [])
            assert sum((d["acct_pay"] for d in drawn), Decimal("0")) == info["acct_mulaid_pay"]
            if drawn:  # own account emptied first; then the highest balances first, each emptied but the last
                assert info["balc"] == 0
                order = [(-before[d["psn_no"]], d["psn_no"]) for d in drawn]
                assert order == sorted(order)
                assert all(d["balc"] == 0 for d in drawn[:-1]) and all(d["balc"] >= 0 for d in drawn)
                assert all(before[d["psn_no"]] - d["acct_pay"] == d["balc"] == ledger.balances[d["psn_no"]]
                           for d in drawn)
    for p in persons:
        if p["psn_no"] not in ledger.persons:
            continue
        history = ledger.account(p["psn_no"])["history"]
        running = None
        for m in history:
            running = m["amount"] if m["kind"] == "set" else (running or Decimal("0.00")) + m["amount"]
            assert m["balc"] == running and m["balc"] >= 0, history
            assert (m["amount"] < 0) == (m["kind"] in ("debit", "mulaid"))
        assert ledger.balances[p["psn_no"]] == (running if running is not None else Decimal("0.00"))


# -- 3. no fund pays more than its cap in a natural year -------------------------------------------


@SETTINGS
@given(scenarios())
def test_no_fund_pays_beyond_its_annual_cap(scenario):
    persons, events, _ = scenario
    ledger = Ledger(BOOK)
    imported: dict[tuple[str, int], dict] = {}
    settled: dict[str, dict] = {}  # setl_id -> setlinfo
    cancelled: set[str] = set()
    for ev in events:
        first = not was_answered(ledger, ev)
        res = step(ledger, ev)
        for p in persons:
            for year in (2024, 2025):
                totals = ledger.totals(p["psn_no"], year)
                for name, cap in CAPS.items():
                    assert totals[name] <= cap, (p["psn_no"], year, name, totals[name])
        if res["infcode"] != 0 or not first:
            continue
        if ev["infno"] == "accumulators":
            imported[(ev["input"]["psn_no"], ev["input"]["year"])] = res["output"]["totals"]
        elif is_settlement(ev):
            info = res["output"]["setlinfo"]
            settled[info["setl_id"]] = info
        elif ev["infno"] in CANCEL_INFNOS:
            cancelled.add(res["output"]["setlinfo"]["init_setl_id"])

    # the totals are what was imported plus what the non-cancelled results paid
    expect: dict[tuple[str, int], dict] = defaultdict(lambda: defaultdict(lambda: Decimal("0.00")))
    for key, totals in imported.items():
        for name in ("op_pool_paid", "ip_pool_paid", "chronic_pool_paid", "hifob_paid", "maf_paid", "adm_cnt"):
            expect[key][name] += totals[name]
    for setl_id, info in settled.items():
        if setl_id in cancelled:
            continue
        e = expect[(info["psn_no"], int(info["setl_time"][:4]))]
        if info["insutype"] == "310":  # the maternity fund (510) has no annual totals
            e["chronic_pool_paid" if info["benefit"] == "chronic_outpatient" else "op_ip_pool_paid"] += info["hifp_pay"]
        e["hifob_paid"] += info["hifob_pay"]
        e["maf_paid"] += info["maf_pay"]
        e["adm_cnt"] += info["med_type"] == "21"
    for p in persons:
        for year in (2024, 2025):
            totals, e = ledger.totals(p["psn_no"], year), expect[(p["psn_no"], year)]
            pooled = totals["op_pool_paid"] + totals["ip_pool_paid"]
            assert pooled == e["op_pool_paid"] + e["ip_pool_paid"] + e["op_ip_pool_paid"], (p["psn_no"], year)
            for name in ("chronic_pool_paid", "hifob_paid", "maf_paid", "adm_cnt"):
                assert totals[name] == e[name], (p["psn_no"], year, name)


# -- 4. settle then cancel restores the state ---------------------------------------------------


@SETTINGS
@given(scenarios(), st.data())
def test_settle_then_cancel_restores_the_state(scenario, data):
    persons, events, filed = scenario
    at = set(data.draw(st.lists(st.integers(0, len(events)), min_size=1, max_size=3, unique=True), label="prefixes"))
    ledger = Ledger(BOOK)
    for i in range(len(events) + 1):
        if i in at:
            before = state(ledger)
            extra = data.draw(settlements(persons, f"X{i}", filed), label=f"settlement after {i} events")
            res = step(ledger, extra)
            if res["infcode"] != 0:
                assert state(ledger) == before
            else:
                undo = step(ledger, cancel(extra, msgid=f"XC{i}"))
                assert undo["infcode"] == 0, undo["err_msg"]
                after = state(ledger)
                setl_id = res["output"]["setlinfo"]["setl_id"]
                # the settlement is remembered as cancelled (it cannot be cancelled again); nothing else moved
                assert after["settlements"][setl_id] == f"XC{i}"
                if "cancelled" in after["snapshot"]:  # older snapshots list the cancelled settlements
                    after["snapshot"]["cancelled"].remove(setl_id)
                for name in ("snapshot", "persons", "institutions", "registrations"):
                    assert after[name] == before[name], name
                orig, neg = res["output"]["setlinfo"], undo["output"]["setlinfo"]
                for name in MONEY_FIELDS:
                    if name != "balc":
                        assert neg[name] == -orig[name], name
                assert neg["balc"] == ledger.balances[extra["input"]["data"]["psn_no"]]
                assert neg["init_setl_id"] == setl_id
                assert undo["output"]["setldetail"] == [
                    dict(r, inscp_scp_amt=-r["inscp_scp_amt"], fund_payamt=-r["fund_payamt"])
                    for r in res["output"]["setldetail"]]
        if i < len(events):
            step(ledger, events[i])


# -- 5. a duplicate changes nothing; a different event under a used msgid is refused -------------


def different(ev: dict, how: str) -> dict:
    other = copy.deepcopy(ev)
    if how == "amount" and is_settlement(ev):
        fee = other["input"]["feedetail"][0]
        fee["det_item_fee_sumamt"] += Decimal("0.01")
        other["input"]["data"].pop("medfee_sumamt", None)
    else:
        other["opter_name"] = "someone else"
    return other


def person_of(ev: dict) -> str | None:
    inp = ev["input"]
    return inp.get("data", inp).get("psn_no")


def _event_day(ev: dict) -> dt.date | None:
    inp = ev["input"]
    if ev["infno"] == "manual_claim":
        return dt.date.fromisoformat(str(inp["claim"]["claim_date"]))
    if is_settlement(ev):
        return dt.datetime.fromisoformat(str(inp["data"]["setl_time"])).date()
    return None


@SETTINGS
@given(scenarios(), st.data(), st.sampled_from([None, 20, 400]))
def test_a_duplicate_changes_nothing(scenario, data, answer_days):
    """Sent again, an answered request gets its result again, byte for byte, and changes nothing; with
    an answer window, one whose event date is further than the window behind the person's latest
    event date may instead be refused ANSWER_EXPIRED, and it still changes nothing."""
    _, events, _ = scenario
    ledger = Ledger(BOOK, answer_days)
    answered: dict[str, tuple[dict, dict, dt.date | None]] = {}  # msgid -> first accepted event, result, event day
    latest: dict[str, dt.date] = {}  # psn_no -> latest event date accepted
    for ev in events:
        res = step(ledger, ev)
        psn = person_of(ev)
        if res["infcode"] == 0 and ev["msgid"] not in answered:
            day = _event_day(ev)
            if day is not None and psn is not None:
                latest[psn] = max(day, latest.get(psn, day))
            answered[ev["msgid"]] = (ev, res, day)
        if not answered or not data.draw(st.booleans()):
            continue
        old, old_res, day = answered[data.draw(st.sampled_from(sorted(answered)))]
        before = state(ledger)
        again = step(ledger, copy.deepcopy(old))
        if again["infcode"] == -1 and again["err_msg"].startswith("ANSWER_EXPIRED"):
            assert answer_days is not None and day is not None
            assert (latest[person_of(old)] - day).days > answer_days
        else:
            assert again == old_res and encode(again) == encode(old_res)
        assert state(ledger) == before
        refused = step(ledger, different(old, data.draw(st.sampled_from(["amount", "envelope"]))))
        assert refused["infcode"] == -1 and refused["err_msg"].startswith("MSGID_REUSED"), refused
        assert refused["output"] is None
        assert state(ledger) == before


# -- 6. replay is byte-identical ------------------------------------------------------------------


@SETTINGS
@given(scenarios())
def test_replay_is_byte_identical(scenario):
    _, events, _ = scenario
    first, second = Ledger(BOOK), Ledger(BOOK)
    lines = [encode(e) for e in events]
    out1 = [encode(r) for r in run(events, first)]
    out2 = [encode(r) for r in run(copy.deepcopy(events), second)]
    assert out1 == out2
    assert first.snapshot() == second.snapshot()
    assert encode(first.snapshot()) == encode(second.snapshot())
    assert state(first) == state(second)
    assert lines == [encode(e) for e in events]  # settling does not touch the events


# -- 7. a cancel of an unknown or already cancelled settlement is refused -------------------------


@SETTINGS
@given(scenarios(), st.data())
def test_bad_cancels_are_refused_and_change_nothing(scenario, data):
    persons, events, _ = scenario
    ledger = Ledger(BOOK)
    ok: dict[str, dict] = {}  # settlement msgid -> event (accepted)
    refused, others, cancelled = set(), set(), set()
    for ev, res in zip(events, run(events, ledger)):
        if is_settlement(ev) and res["infcode"] == 0:
            ok[ev["msgid"]] = ev
        elif is_settlement(ev):
            refused.add(ev["msgid"])
        else:
            others.add(ev["msgid"])
            if ev["infno"] in CANCEL_INFNOS and res["infcode"] == 0:
                cancelled.add(ev["input"]["data"]["omsgid"])
    refused -= set(ok)
    live = sorted(set(ok) - cancelled)
    if live:  # cancel one more properly, so that there is an already-cancelled settlement to try
        target = data.draw(st.sampled_from(live), label="cancelled now")
        assert step(ledger, cancel(ok[target], msgid="Z0"))["infcode"] == 0
        cancelled.add(target)

    kinds = ["unknown msgid", "unknown setl_id", "not a settlement"]
    kinds += ["refused settlement"] if refused else []
    kinds += ["already cancelled", "already cancelled by setl_id"] if cancelled else []
    kinds += ["another person", "wrong infno"] if ok else []
    psn = persons[0]["psn_no"]
    for n, kind in enumerate(data.draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=6), label="bad cancels")):
        msgid = f"Z{n + 1}"
        if kind == "unknown msgid":
            bad = {"infno": data.draw(st.sampled_from(CANCEL_INFNOS)), "msgid": msgid, "fixmedins_code": HOSPITAL[1],
                   "input": {"data": {"psn_no": psn, "omsgid": "M999"}}}
        elif kind == "unknown setl_id":
            bad = {"infno": "2208", "msgid": msgid, "fixmedins_code": HOSPITAL[1],
                   "input": {"data": {"psn_no": psn, "setl_id": "SM999"}}}
        elif kind == "not a settlement":
            bad = {"infno": data.draw(st.sampled_from(CANCEL_INFNOS)), "msgid": msgid, "fixmedins_code": PHARMACY,
                   "input": {"data": {"psn_no": psn, "omsgid": data.draw(st.sampled_from(sorted(others)))}}}
        elif kind == "refused settlement":
            target = data.draw(st.sampled_from(sorted(refused)))
            original = next(e for e in events if e["msgid"] == target)
            bad = cancel(original, msgid=msgid)
        elif kind.startswith("already cancelled"):
            bad = cancel(ok[data.draw(st.sampled_from(sorted(cancelled)))], msgid=msgid)
            if kind.endswith("setl_id"):
                bad["input"]["data"] = {"psn_no": bad["input"]["data"]["psn_no"],
                                        "setl_id": "S" + bad["input"]["data"].pop("omsgid")}
        elif kind == "another person":
            bad = cancel(ok[data.draw(st.sampled_from(sorted(ok)))], msgid=msgid)
            owner = bad["input"]["data"]["psn_no"]
            bad["input"]["data"]["psn_no"] = next((p for p in PSN_NOS if p != owner))
        else:  # wrong infno: a 2208 for a 2304 settlement, ...
            original = ok[data.draw(st.sampled_from(sorted(ok)))]
            wrong = sorted(set(CANCEL_INFNOS) - {CANCEL_FOR[original["infno"]]})
            bad = cancel(original, infno=data.draw(st.sampled_from(wrong)), msgid=msgid)
        before = state(ledger)
        res = step(ledger, bad)
        assert res["infcode"] == -1 and res["output"] is None, (kind, res)
        assert state(ledger) == before, kind


# -- 4b. any cancel's setldetail is the original's, negated ------------------------------------


def _minimal_cancel() -> tuple[list[dict], list[dict], dict]:
    """The minimal example hypothesis found while Ledger._cancel left setldetail[].inscp_scp_amt positive
    (fixed in 938f90c): level 1 before 2024-11-01, deductible 30, 60% of 0.01 -> hifp_pay 0.01."""
    visit = settlement([line("30.01")], day="2024-10-25", msgid="M001")
    return [], hospitals() + [person(), visit, cancel(visit, msgid="C002")], {}


@SETTINGS
@example(_minimal_cancel())
@given(scenarios())
def test_cancel_detail_is_the_negated_original_detail(scenario):
    _, events, _ = scenario
    accepted: dict[str, dict] = {}  # settlement msgid -> output
    for ev, res in zip(events, run(events)):
        if res["infcode"] != 0:
            continue
        if is_settlement(ev):
            accepted.setdefault(ev["msgid"], res["output"])
        elif ev["infno"] in CANCEL_INFNOS and res["inf_refmsgid"] == ev["msgid"]:
            original, undo = accepted[ev["input"]["data"]["omsgid"]], res["output"]
            assert undo["setldetail"] == [
                dict(row, inscp_scp_amt=-row["inscp_scp_amt"], fund_payamt=-row["fund_payamt"])
                for row in original["setldetail"]
            ]
            for row in undo["setldetail"]:
                assert row["inscp_scp_amt"] == undo["setlinfo"]["inscp_scp_amt"]


# -- 7. family mutual aid: exact splits, the drawing order, conservation, exact reversal --------


@st.composite
def families(draw) -> list[dict]:
    """One user and one to three authorizers with random balances and bindings, then purchases (own
    account emptied early, so authorizers are drawn), credits, unbindings and cancels."""
    ids = count(1)
    user, auths = "FAMU0000", [f"FAMA{i:04d}" for i in range(draw(st.integers(1, 3)))]
    events = hospitals() + [person(user, balc=str(draw(cents(0, 5_000))))]
    for a in auths:
        events += [person(a, balc=str(draw(cents(0, 50_000))), retired=draw(st.booleans())),
                   bind(user, a, draw(st.sampled_from(RELATIONS)), draw(st.sampled_from(["2024-01-01", "2024-10-30", "2024-11-15"])))]
    buys = []
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["buy"] * 5 + ["cancel", "credit", "unbind", "duplicate"]))
        msgid = f"FX{next(ids):03d}"
        if op == "buy":
            ev = settlement([line(str(draw(cents(1, 30_000))))], med_type="41", fixmedins_code=PHARMACY, psn_no=user,
                            day=draw(days), msgid=msgid)
            buys.append(ev)
        elif op == "cancel" and buys:
            ev = cancel(draw(st.sampled_from(buys)), msgid=msgid)
        elif op == "credit":
            ev = credit(draw(st.sampled_from(["2024-11", "2024-12"])), draw(st.sampled_from(auths)), "3000", msgid=msgid)
        elif op == "unbind":
            ev = unbind(user, draw(st.sampled_from(auths)), draw(days))
        elif op == "duplicate":
            ev = events[draw(st.integers(0, len(events) - 1))]
        else:
            continue
        events.append(ev)
    return events


@SETTINGS
@given(families())
def test_family_drawing_splits_exactly_in_order_conserves_money_and_reverses_exactly(events):
    ledger = Ledger(BOOK)
    opening: dict[str, Decimal] = {}
    by_setl: dict[str, tuple[dict, dict]] = {}  # setl_id -> (balances before, after)
    for ev in events:
        before = dict(ledger.balances)
        res = step(ledger, ev)
        assert all(b >= 0 for b in ledger.balances.values())
        if ev["infno"] == "person" and res["infcode"] == 0:
            opening.setdefault(ev["input"]["psn_no"], ledger.balances[ev["input"]["psn_no"]])  # re-sends set nothing
        info = (res.get("output") or {}).get("setlinfo") if res["infcode"] == 0 else None
        if info is None or info["setl_id"] in by_setl or (info.get("init_setl_id") in by_setl and
                                                          ledger.balances == before):
            continue  # refused, or a re-send that changed nothing
        if ev["infno"] == "2102":
            drawn = info.get("acct_pay_detl", [])
            assert info["acct_pay"] + info["acct_mulaid_pay"] + info["psn_cash_pay"] == info["medfee_sumamt"]
            if drawn or info["psn_cash_pay"]:
                assert info["balc"] == 0  # the own account first, down to 0
            order = [(-before[d["psn_no"]], d["psn_no"]) for d in drawn]
            assert order == sorted(order)  # the highest balance first; ties: lower psn_no
            assert all(d["balc"] == 0 for d in drawn[:-1])
            if info["psn_cash_pay"] and drawn:
                assert drawn[-1]["balc"] == 0  # cash only once every drawn account is empty
            by_setl[info["setl_id"]] = (before, dict(ledger.balances))
        elif ev["infno"] == "2103":
            was, after = by_setl[info["init_setl_id"]]
            moved = {p for p in was if was[p] != after[p]}
            for p in moved:  # every account the settlement touched gets back exactly what it gave
                assert ledger.balances[p] - before[p] == was[p] - after[p]
    credits = {p: sum((m["amount"] for m in ledger.account(p)["history"] if m["kind"] == "credit"), Decimal("0"))
               for p in opening}
    moves = {p: sum((m["amount"] for m in ledger.account(p)["history"] if m["kind"] in ("debit", "mulaid", "restore")),
                    Decimal("0")) for p in opening}
    assert all(ledger.balances[p] == opening[p] + credits[p] + moves[p] for p in opening)  # money is conserved
