"""Ledger groups across ledger.ops partitions (streams/groups.py), without a broker.

`Net` is the streaming service reduced to its logs: the real router writes into one list per
ledger.ops partition, and each partition's real `PartitionLedgers` takes its ops in an order the
test draws at random, so moves overlap payments, other binds and each other. Workers crash and
redo work from their last commit (state rebuilt from the log, records written again). Whatever the
interleaving, the results must be those of one offline ledger fed the requests in the order they
were applied, every person's requests must be applied in the order sent, and each partition's
state must be what replaying its log gives.
"""
from __future__ import annotations

import json
import random
from decimal import Decimal
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.ledger import Ledger
from schemas.serde import encode
from streams import codec, topics
from streams.partitions import PartitionLedgers
from streams.routing import Source, home, route
from tests.support import BOOK, PHARMACY, bind, cancel, credit, hospitals, line, person, settlement, unbind

RELATIONS = ["spouse", "parent", "child"]


def subject(event: dict) -> str | None:
    data = event["input"].get("data", event["input"])
    return data.get("psn_no")


class Net:
    def __init__(self, partitions: int, rnd: random.Random, crash_rate: float = 0.0) -> None:
        self.partitions, self.rnd, self.crash_rate = partitions, rnd, crash_rate
        self.logs: list[list[bytes]] = [[] for _ in range(partitions)]
        self.taken = [0] * partitions  # next offset each partition takes
        self.committed = [0] * partitions
        self.ledgers = PartitionLedgers(BOOK, partitions)
        for p in range(partitions):
            self.ledgers.reset(p)
        self.first: dict[tuple[int, int], list] = {}  # (partition, offset) -> records it wrote the first time
        self.results: list[bytes] = []  # results in the order first written
        self.sources = [0, 0]  # next offset of the two settle.requests partitions
        self.peak = 0  # the most moves under way at once

    def send(self, event: dict) -> None:
        value = encode(event)
        psn = subject(event)
        sp = home(psn, 2) if psn else 0
        source = Source(topics.REQUESTS, sp, self.sources[sp], 0)
        self.sources[sp] += 1
        records = route(value, (psn or "").encode(), {}, source, self.partitions, 1_000_000)
        for _ in range(2 if self.rnd.random() < self.crash_rate else 1):  # the router redid its batch
            for r in records:
                self.logs[r.partition].append(r.value)

    def pending(self) -> list[int]:
        return [p for p in range(self.partitions) if self.taken[p] < len(self.logs[p])]

    def step(self) -> None:
        p = self.rnd.choice(self.pending())
        if self.rnd.random() < self.crash_rate:
            self.crash(p)
            return
        offset = self.taken[p]
        records = self.ledgers.apply(p, offset, self.logs[p][offset])
        self.taken[p] += 1
        if (p, offset) in self.first:  # redone after a crash: the very same records
            assert [(r.topic, r.partition, r.value) for r in records] == self.first[p, offset]
        else:
            self.first[p, offset] = [(r.topic, r.partition, r.value) for r in records]
            self.results += [r.value for r in records if r.topic == topics.RESULTS]
        for r in records:
            if r.topic == topics.LEDGER_OPS:
                self.logs[r.partition].append(r.value)
            else:
                assert r.topic in (topics.RESULTS, topics.CLEARING), codec.decode_record("rejected", r.value)
        if self.rnd.random() < 0.3:
            self.committed[p] = self.taken[p]
        self.peak = max(self.peak, len(self.state(0).coordinator.moving))

    def crash(self, p: int) -> None:
        """The worker owning p dies: its state is rebuilt from the log up to the last commit, then the
        ops after it are taken again (and what they wrote is written again)."""
        self.ledgers.reset(p)
        for offset in range(self.committed[p]):
            assert self.ledgers.apply(p, offset, self.logs[p][offset], emit=False) == []
        self.taken[p] = self.committed[p]

    def run(self, steps: int | None = None) -> None:
        n = 0
        while self.pending() and (steps is None or n < steps):
            self.step()
            n += 1
            assert n < 20_000, "the ops never run out: something forwards in a loop"

    def state(self, p: int):
        return self.ledgers.states[p]


@st.composite
def families(draw):
    """Persons spread over the partitions; binds that join them into groups (some into one another),
    payments that run accounts dry and draw on authorizers, cancels, credits, unbinds, re-sends."""
    ids = count(1)
    n = draw(st.integers(3, 7))
    persons = [f"5301021980010{i:05d}" for i in range(n)]
    setup = [person(p, balc=str(draw(st.integers(0, 300)))) for p in persons]
    ops, buys = [], []
    for _ in range(draw(st.integers(4, 30))):
        kind = draw(st.sampled_from(["bind"] * 3 + ["buy"] * 5 + ["cancel", "credit", "unbind", "resend", "query"]))
        msgid = f"G{next(ids):04d}"
        if kind in ("bind", "unbind"):
            u, a = draw(st.sampled_from(persons)), draw(st.sampled_from(persons))
            if u == a:
                continue
            ev = (bind(u, a, draw(st.sampled_from(RELATIONS)), "2024-10-01", msgid=msgid) if kind == "bind"
                  else dict(unbind(u, a, "2024-11-20"), msgid=msgid))
        elif kind == "buy":
            ev = settlement([line(str(draw(st.integers(1, 400))))], med_type="41", fixmedins_code=PHARMACY,
                            psn_no=draw(st.sampled_from(persons)), day="2024-11-05", msgid=msgid)
            buys.append(ev)
        elif kind == "cancel" and buys:
            ev = cancel(draw(st.sampled_from(buys)), msgid=msgid)
        elif kind == "credit":
            ev = credit("2024-11", draw(st.sampled_from(persons)), "3000", msgid=msgid)
        elif kind == "resend" and ops:
            ev = draw(st.sampled_from(ops))
        elif kind == "query":
            ev = {"infno": "acct_query", "msgid": msgid, "input": {"psn_no": draw(st.sampled_from(persons))}}
        else:
            continue
        ops.append(ev)
    return setup, ops


def play(setup, ops, partitions: int, rnd: random.Random, crash_rate: float) -> Net:
    net = Net(partitions, rnd, crash_rate)
    for ev in hospitals() + setup:
        net.send(ev)
    net.run()
    for ev in ops:  # requests keep arriving while earlier ones (and the moves they caused) are in flight
        net.send(ev)
        net.run(rnd.randint(0, 6))
    net.run()
    return net


def offline(setup, net: Net, ops) -> Ledger:
    """One ledger fed every request in the order the partitions applied them: each streamed result
    must be byte-identical to what it answers."""
    ledger = Ledger(BOOK)
    for ev in hospitals() + setup:
        ledger.apply(codec.decode(encode(ev), codec.JSON))
    by_msgid = {}
    for ev in ops:
        by_msgid.setdefault(ev["msgid"], ev)
    for value in net.results:
        ev = by_msgid.get(json.loads(value)["inf_refmsgid"])
        if ev is not None:  # (institutions and persons were answered above)
            assert value == encode(ledger.apply(codec.decode(encode(ev), codec.JSON))), ev
    return ledger


def check(net: Net, setup, ops) -> None:
    """Every result is what one offline ledger gives; nothing is left waiting; each person's money is
    on exactly one partition, with everyone they are bound to."""
    ledger = offline(setup, net, ops)
    assert_in_order(net, ops)
    answered = [json.loads(v)["inf_refmsgid"] for v in net.results]
    assert set(answered) >= {ev["msgid"] for ev in ops}
    for p in range(net.partitions):
        state = net.state(p)
        assert not state.parked and not state.leaving and not state.incoming
    coordinator = net.state(0).coordinator
    assert not coordinator.moving and not coordinator.busy and not coordinator.waiting
    balances: dict[str, Decimal] = {}
    for p in range(net.partitions):
        led = net.state(p).ledger
        for psn, balc in led.balances.items():
            assert psn not in balances
            balances[psn] = balc
        for user, bindings in led.bindings.items():
            assert all(b.auth_psn_no in led.balances for b in bindings)
    assert balances == ledger.balances
    assert all(b >= 0 for b in balances.values())


def assert_in_order(net: Net, ops) -> None:
    """Each person's requests are applied in the order sent; binds and unbinds travel through the
    coordinator, so they are ordered among themselves, not with the person's payments."""
    sent: dict[tuple[str, bool], list[str]] = {}
    for ev in ops:
        sent.setdefault((subject(ev), ev["infno"] in ("acct_bind", "acct_unbind")), []).append(ev["msgid"])
    who = {ev["msgid"]: subject(ev) for ev in ops}
    applied: dict[tuple[str, bool], list[str]] = {}
    for value in net.results:
        result = json.loads(value)
        if result["inf_refmsgid"] in who:
            key = (who[result["inf_refmsgid"]], result["infno"] in ("acct_bind", "acct_unbind"))
            applied.setdefault(key, []).append(result["inf_refmsgid"])
    assert applied == sent


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])


@SETTINGS
@given(families(), st.integers(1, 4), st.randoms(use_true_random=False), st.sampled_from([0.0, 0.05]))
def test_any_interleaving_of_moves_and_payments_settles_as_one_ledger_would(family, partitions, rnd, crash_rate):
    setup, ops = family
    check(play(setup, ops, partitions, rnd, crash_rate), setup, ops)


def on_partitions(n: int, partitions: int, homes: list[int]) -> list[str]:
    """n person numbers whose home partitions are `homes` (cycled)."""
    found, candidate = [], 530102198001010001
    while len(found) < n:
        if home(str(candidate), partitions) == homes[len(found) % len(homes)]:
            found.append(str(candidate))
        candidate += 1
    return found


def buy(psn_no: str, amount: str, msgid: str) -> dict:
    return settlement([line(amount)], med_type="41", fixmedins_code=PHARMACY, psn_no=psn_no, msgid=msgid)


# Scenarios that random families reach rarely, each under many schedules and with crashes.
def _back_home():
    """{U, A} forms on A's partition; then a larger group on U's home partition absorbs it, so U's
    state moves back to the partition that was forwarding U's requests away."""
    u, a, w, x, y = on_partitions(5, 3, [1, 0, 2, 1, 1])
    setup = [person(p, balc=b) for p, b in zip((u, a, w, x, y), ("5", "50", "20", "30", "40"))]
    ops = [bind(u, a, "spouse", "2024-10-01", msgid="B1"), buy(u, "30", "M1"),
           bind(w, x, "spouse", "2024-10-01", msgid="B2"), bind(w, y, "child", "2024-10-01", msgid="B3"),
           buy(u, "40", "M2"), bind(u, w, "parent", "2024-10-01", msgid="B4"), buy(u, "80", "M3"),
           buy(a, "10", "M4"), cancel(buy(u, "30", "M1"), msgid="C1"), buy(u, "60", "M5")]
    return setup, ops


def _crossing():
    """Two groups bind into each other at once, in both directions, with payments on both sides."""
    u1, a1, u2, a2 = on_partitions(4, 4, [0, 1, 2, 3])
    setup = [person(p, balc=b) for p, b in zip((u1, a1, u2, a2), ("0", "100", "10", "100"))]
    ops = [bind(u1, a1, "spouse", "2024-10-01", msgid="B1"), bind(u2, a2, "spouse", "2024-10-01", msgid="B2"),
           buy(u1, "30", "M1"), buy(u2, "30", "M2"), bind(u1, a2, "child", "2024-10-01", msgid="B3"),
           bind(u2, a1, "child", "2024-10-01", msgid="B4"), buy(u1, "150", "M3"), buy(u2, "20", "M4"),
           buy(a1, "5", "M5"), buy(a2, "5", "M6")]
    return setup, ops


def _burst():
    """Two users share one authorizer; both pay in a burst that starts right after the binds."""
    u1, u2, a = on_partitions(3, 3, [0, 1, 2])
    setup = [person(u1, balc="0"), person(u2, balc="0"), person(a, balc="100")]
    ops = [bind(u1, a, "spouse", "2024-10-01", msgid="B1"), bind(u2, a, "child", "2024-10-01", msgid="B2")]
    ops += [buy(u, "15", f"M{i}{k}") for i in range(6) for k, u in enumerate((u1, u2))]
    return setup, ops


def _parallel():
    """Four pairs bind at once on different partitions (their moves may run together), then a bind
    joins two of the pairs while payments go on: it waits for both moves."""
    people = on_partitions(8, 4, [0, 1, 2, 3, 1, 2, 3, 0])
    setup = [person(p, balc="40") for p in people]
    ops = [bind(people[i], people[i + 4], "spouse", "2024-10-01", msgid=f"B{i}") for i in range(4)]
    ops += [bind(people[0], people[1], "parent", "2024-10-01", msgid="B9")]
    ops += [buy(p, "70", f"M{k}") for k, p in enumerate(people)]
    return setup, ops


def _chain():
    """A bind that touches a group while that group is moving: it must wait for the move to end and
    then move the merged group on."""
    w, x, y, u, a = on_partitions(5, 4, [2, 3, 3, 0, 1])
    setup = [person(p, balc=b) for p, b in zip((w, x, y, u, a), ("10", "20", "30", "0", "60"))]
    ops = [bind(w, x, "spouse", "2024-10-01", msgid="B1"), bind(a, w, "parent", "2024-10-01", msgid="B5"),
           dict(unbind(a, w, "2024-11-01"), msgid="U0"),  # only a's group: it must not overtake B5
           bind(w, y, "child", "2024-10-01", msgid="B2"),
           buy(w, "50", "M1"), bind(u, a, "spouse", "2024-10-01", msgid="B3"),
           bind(u, w, "child", "2024-10-01", msgid="B4"), buy(u, "90", "M2"), buy(a, "5", "M3"),
           dict(unbind(u, a, "2024-11-01"), msgid="U1"), buy(u, "30", "M4")]
    return setup, ops


@pytest.mark.parametrize("scenario", [_back_home, _crossing, _burst, _parallel, _chain],
                         ids=["back_home", "crossing", "burst", "parallel", "chain"])
@pytest.mark.parametrize("seed", range(25))
def test_moves_under_many_schedules_and_crashes(scenario, seed):
    setup, ops = scenario()
    partitions = 4 if scenario in (_crossing, _parallel, _chain) else 3
    net = play(setup, ops, partitions, random.Random(seed), 0.05 if seed % 2 else 0.0)
    check(net, setup, ops)
    moved = sum(codec.decode_record("ledger_op", v)["kind"] == "import" for log in net.logs for v in log)
    assert moved >= 2


@SETTINGS
@given(families(), st.integers(2, 4), st.randoms(use_true_random=False))
def test_replaying_a_partitions_log_rebuilds_its_state(family, partitions, rnd):
    setup, ops = family
    net = play(setup, ops, partitions, rnd, 0.05)
    for p in range(partitions):
        fresh = PartitionLedgers(BOOK, partitions)
        fresh.reset(p)
        for offset, value in enumerate(net.logs[p]):
            assert fresh.apply(p, offset, value, emit=False) == []
        live, again = net.state(p), fresh.states[p]
        assert again.ledger.snapshot() == live.ledger.snapshot()
        assert (again.away, again.guests, again.seen) == (live.away, live.guests, live.seen)
        if p == 0:
            assert again.coordinator.place == live.coordinator.place
            assert again.coordinator.members == live.coordinator.members


def test_a_bind_across_partitions_moves_the_smaller_group_and_payments_then_draw_on_the_authorizer():
    partitions = 4
    user, auth = "530102198001010001", "530102198001010002"
    while home(user, partitions) == home(auth, partitions):
        auth = str(int(auth) + 1)
    net = Net(partitions, random.Random(7))
    for ev in hospitals() + [person(user, balc="10"), person(auth, balc="500")]:
        net.send(ev)
    net.run()
    net.send(bind(user, auth, "spouse", "2024-10-01", msgid="BIND-1"))
    net.run()
    buy = settlement([line("100")], med_type="41", fixmedins_code=PHARMACY, psn_no=user, msgid="BUY-1")
    net.send(buy)
    net.run()
    info = json.loads(net.results[-1])["output"]["setlinfo"]
    assert (info["acct_pay"], info["acct_mulaid_pay"], info["psn_cash_pay"]) == (10, 90, 0)
    assert info["acct_pay_detl"] == [{"psn_no": auth, "acct_pay": 90, "balc": 410}]
    # both live where the authorizer lived (equal sizes: the user's side moves); the user's home forwards
    there = home(auth, partitions)
    assert net.state(there).ledger.balances == {user: Decimal("0.00"), auth: Decimal("410.00")}
    assert net.state(home(user, partitions)).away == {user: there}
    net.send(cancel(buy, msgid="UNDO-1"))
    net.run()
    assert net.state(there).ledger.balances == {user: Decimal("10.00"), auth: Decimal("500.00")}


def test_a_group_too_large_is_refused_with_a_reason(monkeypatch):
    from streams import groups
    monkeypatch.setattr(groups, "MAX_GROUP", 2)
    net = Net(2, random.Random(1))
    a, b, c = "530102198001010001", "530102198001010002", "530102198001010003"
    for ev in hospitals() + [person(a), person(b), person(c)]:
        net.send(ev)
    net.run()
    net.send(bind(a, b, "spouse", "2024-10-01", msgid="B-1"))
    net.send(bind(c, b, "parent", "2024-10-01", msgid="B-2"))
    net.run()
    last = json.loads(net.results[-1])
    assert last["inf_refmsgid"] == "B-2" and last["err_msg"].startswith("GROUP_TOO_LARGE: binding would join 3 people")


def test_moves_of_different_groups_run_at_once():
    setup, ops = _parallel()
    peaks = []
    for seed in range(20):
        net = play(setup, ops, 4, random.Random(seed), 0.0)
        check(net, setup, ops)
        peaks.append(net.peak)
    assert max(peaks) >= 2, peaks


def test_a_bind_whose_bytes_no_longer_validate_is_answered_where_the_user_lives_not_crashed_on():
    """The router validated it, so only a changed schema gets here: the coordinator must not fail on it."""
    net = Net(2, random.Random(3))
    user = "530102198001010001"
    for ev in hospitals() + [person(user)]:
        net.send(ev)
    net.run()
    op = codec.decode_record("ledger_op", route(encode(bind(user, "530102198001010002", "spouse", "2024-10-01",
                                                             msgid="B-X")), user.encode(), {}, Source(topics.COMMANDS, 0, 99, 0),
                                                2, 1_000_000)[0].value)
    op["body"] = op["body"].replace(b'"relation":"spouse"', b'"relation":"cousin"')  # no longer a valid bind
    net.logs[0].append(codec.encode_record("ledger_op", op))
    net.run()
    last = json.loads(net.results[-1])
    assert last["inf_refmsgid"] == "B-X" and last["err_msg"].startswith("BAD_EVENT")
