"""Snapshots of partition states (streams/snapshots.py), without a broker: a state restored from a
snapshot and then fed the rest of the log gives exactly what replaying the log from offset 0 gives,
and a snapshot that is not this log's, these rules' or this code's state, or not a yibao state at
all, is refused rather than used."""
from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.policy import POLICY_ROOT
from schemas.serde import encode
from streams import topics
from streams.clearing import PartitionClearing
from streams.partitions import PartitionLedgers
from streams.routing import Source, route
from streams.snapshots import KEEP, Snapshots, value_hash
from tests.support import BOOK, bind, cancel, credit, hospitals, line, person, settlement

USER, AUTH, OTHER = "530102198001010001", "530102198001010002", "530102198001010003"


def _log() -> list[bytes]:
    """One partition's ledger.ops: reference data, payments, a family binding, drawing, cancels."""
    paid = [settlement([line(str(100 + 7 * i))], psn_no=(USER, OTHER)[i % 2], acct_used_flag="1",
                       day=f"2024-11-{5 + i % 20:02d}") for i in range(40)]
    events = (hospitals() + [person(USER, balc="50"), person(AUTH, balc="900"), person(OTHER, balc="300"),
                             bind(USER, AUTH, "spouse", "2024-01-01"), credit("2024-11", AUTH)]
              + paid[:20] + [cancel(paid[3]), cancel(paid[8])] + paid[20:] + [cancel(paid[30]), paid[5], paid[31]])  # two sent again
    ops = []
    for offset, event in enumerate(events):
        for r in route(encode(event), None, {}, Source(topics.REQUESTS, 0, offset, 1_730_000_000_000), 1, 1 << 20):
            if r.topic == topics.LEDGER_OPS:
                ops.append(r.value)
    return ops


LOG = _log()


def _run(ledgers: PartitionLedgers, start: int, stop: int, emit: bool = True) -> list:
    out = []
    for offset in range(start, stop):
        out += ledgers.apply(0, offset, LOG[offset], emit=emit)
    return out


def _state(ps) -> tuple:
    c = ps.coordinator
    return ({k: v for k, v in vars(ps.ledger).items() if k != "book"}, ps.seen, ps.away, ps.guests, ps.incoming, ps.parked,
            (c.group, c.members, c.place, c.moving, c.waiting))


def _snapshots(tmp_path: Path, every: int = 1, policies: Path = POLICY_ROOT) -> Snapshots:
    return Snapshots(tmp_path / "snap", every, policies, BOOK)


def _save_at(snaps: Snapshots, k: int) -> PartitionLedgers:
    live = PartitionLedgers(BOOK, 1)
    live.reset(0)
    _run(live, 0, k)
    assert snaps.due(topics.LEDGER_OPS, live.next_offset) == [0]
    assert snaps.save(topics.LEDGER_OPS, [(0, k, value_hash(live.last_value[0]), live.states[0])])
    snaps.wait()
    return live


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(1, len(LOG) - 1))
def test_restart_from_a_snapshot_equals_restart_from_offset_0(tmp_path_factory, k):
    snaps = _snapshots(tmp_path_factory.mktemp("s"))
    _save_at(snaps, k)
    [(offset, path)] = snaps.candidates(topics.LEDGER_OPS, 0, len(LOG))
    assert offset == k
    restored = PartitionLedgers(BOOK, 1)
    restored.reset(0, snaps.load(path, topics.LEDGER_OPS, 0, value_hash(LOG[k - 1])), k, LOG[k - 1])
    replayed = PartitionLedgers(BOOK, 1)
    replayed.reset(0)
    _run(replayed, 0, k, emit=False)
    assert _run(restored, k, len(LOG)) == _run(replayed, k, len(LOG))
    assert _state(restored.states[0]) == _state(replayed.states[0])
    assert restored.states[0].ledger.account(USER) == replayed.states[0].ledger.account(USER)


def test_a_clearing_state_snapshots_and_restores_too(tmp_path):
    ledgers = PartitionLedgers(BOOK, 1)
    ledgers.reset(0)
    entries = [r.value for r in _run(ledgers, 0, len(LOG)) if r.topic == topics.CLEARING]
    assert len(entries) >= 40
    live, snaps = PartitionClearing(), _snapshots(tmp_path)
    live.reset(0)
    for offset, value in enumerate(entries[:25]):
        live.apply(0, offset, value)
    snaps.save(topics.CLEARING, [(0, 25, value_hash(entries[24]), live.states[0])])
    snaps.wait()
    [(_, path)] = snaps.candidates(topics.CLEARING, 0, 100)
    restored = PartitionClearing()
    restored.reset(0, snaps.load(path, topics.CLEARING, 0, value_hash(entries[24])), 25, entries[24])
    for states in (live, restored):
        for offset, value in enumerate(entries[25:], start=25):
            states.apply(0, offset, value)
    assert restored.states[0].rows("2024-11") == live.states[0].rows("2024-11")
    assert restored.states[0].seen == live.states[0].seen


def test_only_the_newest_snapshots_are_kept_and_only_those_at_or_before_the_offset_asked_are_offered(tmp_path):
    snaps = _snapshots(tmp_path)
    for k in (10, 20, 30, 40):
        _save_at(snaps, k)
    assert [o for o, _ in snaps.candidates(topics.LEDGER_OPS, 0, 1000)] == [40, 30][:KEEP]
    assert [o for o, _ in snaps.candidates(topics.LEDGER_OPS, 0, 35)] == [30]
    assert snaps.candidates(topics.LEDGER_OPS, 1, 1000) == []


def test_a_snapshot_is_due_every_n_records_of_its_partition(tmp_path):
    snaps = _snapshots(tmp_path, every=100)
    assert snaps.due(topics.LEDGER_OPS, {0: 99, 1: 100, 2: 250}) == [1, 2]
    snaps.loaded(topics.LEDGER_OPS, 2, 200)
    assert snaps.due(topics.LEDGER_OPS, {0: 99, 1: 100, 2: 250}) == [1]


def _refused(snaps: Snapshots, path: Path, last: str, caplog) -> str:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="yibao.snapshots"):
        assert snaps.load(path, topics.LEDGER_OPS, 0, last) is None
    [message] = [r.getMessage() for r in caplog.records]
    return message


def test_a_snapshot_of_another_log_other_policies_or_other_code_is_refused(tmp_path, caplog):
    snaps = _snapshots(tmp_path)
    _save_at(snaps, 30)
    [(_, path)] = snaps.candidates(topics.LEDGER_OPS, 0, 100)
    assert "another log" in _refused(snaps, path, value_hash(LOG[28]), caplog)

    changed = tmp_path / "policies"
    shutil.copytree(POLICY_ROOT, changed)
    region = changed / "yunnan" / "region.yaml"
    region.write_text(region.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    other_rules = Snapshots(tmp_path / "snap", 1, changed, BOOK)
    assert "other policy files" in _refused(other_rules, path, value_hash(LOG[29]), caplog)

    other_code = _snapshots(tmp_path)
    other_code.code = "0" * 64
    assert "other code" in _refused(other_code, path, value_hash(LOG[29]), caplog)


class _Planted:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/yibao-planted-snapshot-ran"),))


# Reaches code through a module whose classes a state may hold: `Path`, which processors.policy
# imports, and its method by a dotted name (pickle protocol 4+ resolves those): Path(marker).touch().
THROUGH_A_STATE_MODULE = (b"\x80\x05cprocessors.policy\nPath.touch\n(cprocessors.policy\nPath\n"
                          b"(V/tmp/yibao-planted-snapshot-ran\ntRtR.")


def test_a_planted_or_truncated_snapshot_is_refused_and_runs_nothing(tmp_path, caplog):
    snaps = _snapshots(tmp_path)
    _save_at(snaps, 30)
    [(_, path)] = snaps.candidates(topics.LEDGER_OPS, 0, 100)
    header = path.read_bytes().split(b"\n", 1)[0]
    marker = Path("/tmp/yibao-planted-snapshot-ran")
    marker.unlink(missing_ok=True)
    planted = path.with_name(f"{40:012d}.snap")
    planted.write_bytes(header + b"\n" + pickle.dumps(_Planted()))
    assert "is not part of a yibao state" in _refused(snaps, planted, value_hash(LOG[29]), caplog)
    planted.write_bytes(header + b"\n" + THROUGH_A_STATE_MODULE)
    assert "processors.policy.Path.touch is not part of a yibao state" in _refused(snaps, planted, value_hash(LOG[29]),
                                                                                  caplog)
    assert not marker.exists()

    truncated = path.with_name(f"{35:012d}.snap")
    truncated.write_bytes(path.read_bytes()[: len(header) + 200])
    assert "unreadable" in _refused(snaps, truncated, value_hash(LOG[29]), caplog)


def test_a_snapshot_writer_that_fails_is_reported_and_the_next_save_retries(tmp_path, caplog):
    snaps = Snapshots(tmp_path / "file", 1, POLICY_ROOT, BOOK)
    (tmp_path / "file").write_text("not a directory")
    live = PartitionLedgers(BOOK, 1)
    live.reset(0)
    _run(live, 0, 5)
    with caplog.at_level(logging.WARNING, logger="yibao.snapshots"):
        assert snaps.save(topics.LEDGER_OPS, [(0, 5, value_hash(LOG[4]), live.states[0])])
        snaps.wait()
    assert any("snapshot writer failed" in r.getMessage() for r in caplog.records)
    (tmp_path / "file").unlink()
    assert snaps.save(topics.LEDGER_OPS, [(0, 5, value_hash(LOG[4]), live.states[0])])
    snaps.wait()
    assert snaps.candidates(topics.LEDGER_OPS, 0, 5)
