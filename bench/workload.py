"""Seeded, deterministic workloads for the settlement benchmark: a population and JSON-lines events.

Everything is drawn from `random.Random` seeded with a string derived from the seed (str seeds are
hashed with SHA-512, so they are stable across runs and Python versions), and every msgid is
numbered here rather than by `tests.support`'s global counter, so the same seed gives byte-identical
lines whatever else ran before. Events are built with the `tests.support` builders and encoded once
with `schemas.serde.encode`; the benchmark only ever sees the bytes.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count

from schemas.serde import encode
from tests import support as s

YEAR = 2024
FIRST_DAY = dt.date(YEAR, 3, 1)  # the stream runs through both rule sets (2024-11-01 starts the second)
LAST_DAY = dt.date(YEAR, 12, 31)
CHRONIC = [d.code for d in s.BOOK.policies[-1].chronic.diseases]
SPECIAL = [d.code for d in s.BOOK.policies[-1].special.diseases]

# fee-line mix: 甲/乙/丙 and item kinds (plain names and the national list_type codes)
LEVELS, LEVEL_W = ("01", "02", "03"), (55, 35, 10)
DRUGS, SERVICES, CONSUMABLES = ("drug", "101", "102", "103"), ("service", "201"), ("consumable", "301")
KINDS = DRUGS + SERVICES + CONSUMABLES
KIND_W = (40, 12, 4, 2, 18, 10, 9, 5)


@dataclass(slots=True)
class Person:
    psn_no: str
    age: int
    gend: str
    retired: bool
    chronic: list[str] = field(default_factory=list)
    special: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Population:
    people: list[Person]
    hospitals: dict[int, list[str]]  # level -> codes
    day_surgery: list[str]
    maternity: list[str]
    pharmacies: list[str]
    pooling_pharmacies: list[str]
    setup: list[bytes]  # institution, person, filing and accumulator-import lines, applied untimed
    kinds: Counter


@dataclass(slots=True)
class Workload:
    name: str
    lines: list[bytes]
    kinds: Counter

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for line in self.lines:
            h.update(line)
            h.update(b"\n")
        return h.hexdigest()[:16]


def _line(event: dict) -> bytes:
    return encode(event)


def _money(rng: random.Random, lo: float, hi: float) -> Decimal:
    """A two-decimal amount, log-uniform between lo and hi yuan."""
    fen = int(round(lo * 100 * (hi / lo) ** rng.random()))
    return Decimal(fen).scaleb(-2)


def population(seed: int, people: int = 3000) -> Population:
    rng = random.Random(f"yibao-bench-population-{seed}")
    ids = count(1)
    setup: list[dict] = []
    kinds: Counter = Counter()

    def emit(event: dict, prefix: str, kind: str) -> None:
        event["msgid"] = f"{prefix}{next(ids):07d}"
        setup.append(event)
        kinds[kind] += 1

    hospitals: dict[int, list[str]] = {1: [], 2: [], 3: []}
    day_surgery, maternity, pharmacies, pooling = [], [], [], []
    for level, n in ((1, 24), (2, 12), (3, 6)):
        for i in range(n):
            code = f"H53{level}{i:05d}"
            ds = level > 1 and rng.random() < 0.7
            matn = level > 1 or rng.random() < 0.2
            emit(s.institution(code, level, day_surgery=ds, matn=matn), "I", "institution")
            hospitals[level].append(code)
            if ds:
                day_surgery.append(code)
            if matn:
                maternity.append(code)
    for i in range(16):
        code = f"P530{i:05d}"
        op = rng.random() < 0.6
        emit(s.institution(code, None, pharmacy=True, outpatient_pooling=op), "I", "pharmacy")
        pharmacies.append(code)
        if op:
            pooling.append(code)

    folks = []
    for i in range(people):
        birth = dt.date(1936, 1, 1) + dt.timedelta(days=rng.randrange(66 * 365))  # born 1936-2001
        gend = rng.choice("12")
        age = YEAR - birth.year
        retired = age >= (60 if gend == "1" else 55) and rng.random() < 0.95
        psn_no = f"5301{rng.randrange(10, 99)}{birth:%Y%m%d}{i:04d}"
        balc = str(_money(rng, 5, 8000)) if rng.random() < 0.85 else None
        kw = {}
        if rng.random() < 0.03:
            kw = {"maf_lv": rng.choice(("deep", "relative")), "maf_base_inc": str(_money(rng, 3000, 20000))}
        emit(s.person(psn_no, brdy=birth.isoformat(), retired=retired, balc=balc, gend=gend, **kw), "P", "person")
        p = Person(psn_no, age, gend, retired)
        if rng.random() < (0.30 if age >= 50 else 0.06):
            p.chronic = rng.sample(CHRONIC, rng.choices((1, 2, 3, 4), (60, 25, 10, 5))[0])
        if rng.random() < 0.03:
            p.special = [rng.choice(SPECIAL)]
        for code in p.chronic + p.special:
            emit(s.filing(code, psn_no, begndate=f"{YEAR}-01-01"), "F", "filing")
        if rng.random() < 0.05:  # totals built up elsewhere earlier in the year
            emit(s.accumulators(YEAR, psn_no, op_pool_paid=_money(rng, 100, 5500)), "A", "accumulators")
        folks.append(p)
    return Population(folks, hospitals, day_surgery, maternity, pharmacies, pooling,
                      [_line(e) for e in setup], kinds)


def _fee_lines(rng: random.Random, n: int, lo: float, hi: float) -> list[dict]:
    lines = []
    services = []
    for i in range(1, n + 1):
        lv = rng.choices(LEVELS, LEVEL_W)[0]
        kind = rng.choices(KINDS, KIND_W)[0]
        amount = _money(rng, lo, hi)
        extra: dict = {}
        if kind in DRUGS and lv == "02" and rng.random() < 0.12:
            extra["nego_drug_flag"] = "1"
        if kind in SERVICES:
            services.append(str(i))
        elif kind in CONSUMABLES and services and rng.random() < 0.5:
            extra["svc_feedetl_sn"] = rng.choice(services)
        if rng.random() < 0.08:  # priced item with a limit, sometimes exceeded
            cnt = rng.randint(1, 6)
            unit = (amount / cnt * Decimal(str(round(rng.uniform(0.8, 1.15), 2)))).quantize(Decimal("0.01"))
            extra.update(cnt=Decimal(cnt), pric_uplmt_amt=max(unit, Decimal("0.01")))
        if rng.random() < 0.3:
            extra["med_list_codg"] = f"X{rng.randrange(10**9):09d}"
        lines.append(s.line(str(amount), lv, kind, **extra))
    return lines


class _Stream:
    """Builds one workload's events in time order, numbering its msgids."""

    def __init__(self, rng: random.Random, pop: Population, n: int, prefix: str) -> None:
        self.rng, self.pop, self.n, self.prefix = rng, pop, n, prefix
        self.ids = count(1)
        self.lines: list[bytes] = []
        self.kinds: Counter = Counter()

    def time(self) -> str:
        span = (LAST_DAY - FIRST_DAY).days
        day = FIRST_DAY + dt.timedelta(days=span * len(self.lines) // max(1, self.n))
        return f"{day} {self.rng.randrange(7, 22):02d}:{self.rng.randrange(60):02d}:{self.rng.randrange(60):02d}"

    def settlement(self, kind: str, person: Person, code: str, fee_lines: list[dict], med_type: str, **data) -> dict:
        rng = self.rng
        n = next(self.ids)
        if rng.random() < 0.5:
            data.setdefault("acct_used_flag", rng.choice("01"))
        if rng.random() < 0.3:
            data["medfee_sumamt"] = sum((l["det_item_fee_sumamt"] for l in fee_lines), Decimal("0"))
        event = s.settlement(fee_lines, med_type=med_type, psn_no=person.psn_no, fixmedins_code=code,
                             msgid=f"{self.prefix}{n:08d}", mdtrt_id=f"D{self.prefix}{n:08d}",
                             setl_time=self.time(), **data)
        self.emit(event, kind)
        return event

    def emit(self, event: dict, kind: str) -> None:
        self.lines.append(_line(event))
        self.kinds[kind] += 1

    def hospital(self, weights=(50, 30, 20)) -> str:
        level = self.rng.choices((1, 2, 3), weights)[0]
        return self.rng.choice(self.pop.hospitals[level])


def outpatient(seed: int, pop: Population, n: int) -> Workload:
    """General outpatient only: med_type 11 (2207), 2-8 fee lines of mixed 甲/乙/丙."""
    st = _Stream(random.Random(f"yibao-bench-outpatient-{seed}"), pop, n, "O")
    while len(st.lines) < n:
        person = st.rng.choice(pop.people)
        st.settlement("outpatient 11", person, st.hospital(), _fee_lines(st.rng, st.rng.randint(2, 8), 2, 400), "11")
    return Workload("outpatient", st.lines, st.kinds)


MIX = {  # kind -> weight (per cent of the mixed stream)
    "outpatient 11": 44, "chronic/special 14": 12, "pharmacy 41": 14, "inpatient 21": 7, "emergency 13": 4,
    "day surgery 28": 4, "maternity 51/52": 3, "family planning 53": 1, "cancel": 7, "duplicate": 4,
}


def mixed(seed: int, pop: Population, n: int) -> Workload:
    """Every benefit, with cancels of earlier settlements and verbatim resends (duplicates)."""
    rng = random.Random(f"yibao-bench-mixed-{seed}")
    st = _Stream(rng, pop, n, "X")
    kinds, weights = list(MIX), list(MIX.values())
    filers = [p for p in pop.people if p.chronic or p.special]
    mothers = [p for p in pop.people if p.gend == "2" and 20 <= p.age <= 45]
    fathers = [p for p in pop.people if p.gend == "1" and 20 <= p.age <= 50]
    cancellable: list[dict] = []
    while len(st.lines) < n:
        kind = rng.choices(kinds, weights)[0]
        person = rng.choice(pop.people)
        if kind == "outpatient 11":
            ev = st.settlement(kind, person, st.hospital(), _fee_lines(rng, rng.randint(2, 8), 2, 400), "11")
        elif kind == "chronic/special 14":
            if rng.random() < 0.85:
                person = rng.choice(filers)
                code = rng.choice(person.chronic + person.special)
            else:  # not registered: settled as general outpatient with a warning
                code = rng.choice(CHRONIC)
            ev = st.settlement(kind, person, st.hospital(), _fee_lines(rng, rng.randint(2, 10), 5, 600), "14",
                               dise_codg=code)
        elif kind == "pharmacy 41":
            data: dict = {}
            if rng.random() < 0.5:
                code = rng.choice(pop.pooling_pharmacies)
                data["rx_fixmedins_code"] = st.hospital()
                if (person.chronic or person.special) and rng.random() < 0.5:
                    data["dise_codg"] = rng.choice(person.chronic + person.special)
            else:
                code = rng.choice(pop.pharmacies)
            ev = st.settlement(kind, person, code, _fee_lines(rng, rng.randint(1, 6), 3, 300), "41", **data)
        elif kind == "inpatient 21":
            ev = st.settlement(kind, person, st.hospital((25, 40, 35)), _fee_lines(rng, rng.randint(10, 40), 20, 3000),
                               "21", dise_codg=f"I{rng.randrange(10, 99)}.{rng.randrange(10)}")
        elif kind == "emergency 13":
            ev = st.settlement(kind, person, st.hospital(), _fee_lines(rng, rng.randint(3, 12), 10, 1500), "13")
        elif kind == "day surgery 28":
            ev = st.settlement(kind, person, rng.choice(pop.day_surgery), _fee_lines(rng, rng.randint(5, 20), 20, 4000),
                               "28")
        elif kind == "maternity 51/52":
            data = {}
            if rng.random() < 0.1:  # a man claiming for his non-working spouse
                person = rng.choice(fathers)
                data["spus_unemp_flag"] = "1"
            else:
                person = rng.choice(mothers)
            if rng.random() < 0.75:
                med_type = "52"
                data["matn_type"] = rng.choices("123", (60, 10, 30))[0]
                if rng.random() < 0.05:
                    data["fetus_cnt"] = 2
                fee = _fee_lines(rng, rng.randint(8, 25), 20, 2000)
            else:
                med_type = "51"
                data.update(matn_type="4", geso_mons=rng.randint(1, 9))
                fee = _fee_lines(rng, rng.randint(3, 10), 10, 800)
            ev = st.settlement(kind, person, rng.choice(pop.maternity), fee, med_type, **data)
        elif kind == "family planning 53":
            data = {"birctrl_type": rng.choice("12345678")}
            if rng.random() < 0.2:
                data = {"birctrl_type": "9", "geso_mons": rng.randint(1, 6)}
            ev = st.settlement(kind, rng.choice(mothers), rng.choice(pop.maternity),
                               _fee_lines(rng, rng.randint(2, 6), 10, 800), "53", **data)
        elif kind == "cancel":
            if not cancellable:
                continue
            original = cancellable.pop(rng.randrange(len(cancellable)))
            st.emit(s.cancel(original, msgid=f"{st.prefix}C{next(st.ids):08d}"), kind)
            continue
        else:  # duplicate: the same request sent again, byte for byte
            if not st.lines:
                continue
            st.lines.append(rng.choice(st.lines))
            st.kinds[kind] += 1
            continue
        cancellable.append(ev)
    return Workload("mixed", st.lines, st.kinds)


def family(seed: int, pop: Population, n: int) -> tuple[Workload, list[bytes]]:
    """Family mutual aid: account purchases at pharmacies without pooling by users bound to one to
    three authorizers (parents, spouse, children: permitted under both rule sets), whose own accounts
    run dry, so the authorizers are drawn on in balance order. Returns the workload and its bindings
    (setup, applied untimed on top of the population)."""
    rng = random.Random(f"yibao-bench-family-{seed}")
    people = pop.people[:]
    rng.shuffle(people)
    users, others = people[: len(people) // 10], people[len(people) // 10:]
    setup = []
    for i, user in enumerate(users):
        for auth in rng.sample(others, rng.randint(1, 3)):
            setup.append(_line(s.bind(user.psn_no, auth.psn_no, rng.choice(("parent", "spouse", "child")),
                                      f"{YEAR}-01-01", msgid=f"B{i:05d}{auth.psn_no[-4:]}")))
    st = _Stream(rng, pop, n, "Y")
    while len(st.lines) < n:
        st.settlement("family 41", rng.choice(users), rng.choice(pop.pharmacies),
                      _fee_lines(rng, rng.randint(1, 6), 20, 600), "41", acct_used_flag="1")
    return Workload("family", st.lines, st.kinds), setup
