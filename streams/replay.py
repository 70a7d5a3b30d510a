"""Audit replay (`yibao replay`): the recorded log run again through the same router, ledger and
clearing code into empty state of its own, and every record that gives compared with the one recorded.

Sources: the audit archive (`connectors/archive.py`: one life folder, or the newest one under a parent)
or a running service's topics, read from their beginning until they are idle for a while (end offsets
are never trusted: BROKER.md point 1). Nothing is written: the state is this process's own and the
topics are only read.

Stage by stage, each from what the stage before it produced:
1. router: every input record (settle.requests, insured.commands) through `routing.route` with its
   recorded source (topic, partition, offset, timestamp).
2. ledger: each ledger.ops partition in offset order through `PartitionLedgers`. The log gives the
   order; what is taken at each position is the recomputed twin of the recorded op (a router op is
   known by its source, an op a ledger partition wrote by its numbering: via_partition, via_offset,
   seq), so the ledger runs on what the inputs make of it, and a what-if moves its own new state
   between partitions. A partition whose next op another partition has not written yet waits for it;
   an op with no twin is taken as recorded, and reported.
3. clearing: each clearing.entries partition through `PartitionClearing`, likewise (an entry's twin by
   its setl_id, a command's by its source).
4. outputs (settle.results, settle.rejected, clearing.statements): equal bytes match first; what is
   left is decoded, paired by what identifies it (a result: its institution, infno, msgid and setl_id
   or person) and compared field by field.

A record the service wrote twice (at-least-once: a batch redone after a crash) is counted as a copy,
not a difference. A window (from an offset or a time) limits which input events are compared, a period
which settlement dates; the state is always rebuilt from the first record. ledger.ops and the clearing
commands are the chain from the inputs to the results: they are checked whole, whatever the scope.
"""
from __future__ import annotations

import calendar
import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.archive import MANIFEST, read_manifest
from connectors.archive import records as segment_records
from processors.ledger import ANSWER_DAYS
from processors.policy import PolicyBook

from . import codec, topics
from .clearing import PartitionClearing
from .partitions import PartitionLedgers
from .routing import CLEARING_COMMAND, Record, Source, route
from .view import document

INPUTS = (topics.REQUESTS, topics.COMMANDS)
CHAIN = (topics.LEDGER_OPS, topics.CLEARING)  # compared position by position
OUTPUTS = (topics.RESULTS, topics.REJECTED, topics.STATEMENTS)  # compared as sets
COMPARED = CHAIN + OUTPUTS
MISSING = "—"  # a field one side does not have
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class ReplayError(Exception):
    """Input a replay cannot start from (no archive, an empty one, a bad period, window or partition
    count): the CLI exits 2 with the message."""


@dataclass(frozen=True, slots=True)
class Logged:
    """One recorded Kafka record, as archived or as read from its topic."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    value: bytes

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


Origin = tuple[str, int, int]  # the input record (topic, partition, offset) a recomputed record comes from


class Log:
    """Every record read, per topic-partition, in offset order."""

    def __init__(self) -> None:
        self.parts: dict[tuple[str, int], list[Logged]] = defaultdict(list)

    def add(self, r: Logged) -> None:
        if not topics.is_filler(r.headers):  # it only takes an offset (streams/topics.py)
            self.parts[r.topic, r.partition].append(r)

    def partitions(self, topic: str) -> list[int]:
        return sorted(p for t, p in self.parts if t == topic)

    def of(self, topic: str) -> list[Logged]:
        return [r for p in self.partitions(topic) for r in self.parts[topic, p]]

    def count(self, *names: str) -> int:
        return sum(len(v) for (t, _), v in self.parts.items() if t in names)

    def sort(self) -> None:
        for records in self.parts.values():
            records.sort(key=lambda r: r.offset)


# -- sources --------------------------------------------------------------------------------------


def lives(directory: Path) -> list[Path]:
    """The archives at `directory`, oldest first: itself when it holds a manifest, else each folder
    below it that does (`yibao run` makes one per embedded-broker life)."""
    if (directory / MANIFEST).exists():
        return [directory]
    return sorted((p.parent for p in directory.glob(f"*/{MANIFEST}")), key=_started)


def _started(folder: Path) -> float:
    """When a life began: the UTC time of an `embedded-<yyyyMMddTHHmmssZ>` name, else (`cluster`, a copy
    renamed) when its manifest was last written."""
    try:
        return dt.datetime.strptime(folder.name, "embedded-%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        return (folder / MANIFEST).stat().st_mtime


def choose_archive(directory: Path, life: str | None = None) -> tuple[Path, list[Path]]:
    """(the archive to replay, every life found): `life` by name, else the newest."""
    if not directory.is_dir():
        raise ReplayError(f"{directory}: no such directory")
    found = lives(directory)
    if not found:
        raise ReplayError(f"{directory}: no {MANIFEST} here or in a folder below: not an audit archive")
    if life is None:
        return found[-1], found
    chosen = next((p for p in found if p.name == life), None)
    if chosen is None:
        raise ReplayError(f"--life {life}: {directory} holds {', '.join(p.name for p in found)}")
    return chosen, found


def read_archive(root: Path) -> tuple[Log, list[str]]:
    """Every record of the archive's sealed segments, and the files that could not be read (missing or
    broken: `verify` says which and why). A changed but readable file is read: the replay shows what
    changed in it."""
    log, unread = Log(), []
    for entry in read_manifest(root):
        try:
            rows = list(segment_records(root, entry))
        except Exception:  # noqa: BLE001 - missing, truncated, not Avro: verify names it, the replay goes on
            unread.append(entry["file"])
            continue
        for r in rows:
            log.add(Logged(r["topic"], r["partition"], r["offset"], r["timestamp"], r["key"],
                           tuple((h["key"], h["value"]) for h in r["headers"]), r["value"]))
    log.sort()
    if not log.parts:
        raise ReplayError(f"{root}: the archive holds no sealed record (is the service still running? its "
                          "archiver seals segments when it stops)")
    return log, unread


def read_service(bootstrap: str, kafka: dict, idle: float) -> Log:
    """Every record of the service's topics, each partition from its first record, until no record has
    come for `idle` seconds."""
    import asyncio

    from connectors.client import tail

    log = Log()

    def take(r) -> None:
        log.add(Logged(r.topic, r.partition, r.offset, r.timestamp, r.key, tuple(r.headers or ()), r.value or b""))

    asyncio.run(tail(bootstrap, topics.ALL, True, None, kafka, take, idle))
    log.sort()
    if not log.count(*INPUTS):
        raise ReplayError(f"{bootstrap}: no input record on {', '.join(INPUTS)}: nothing to replay")
    return log


# -- scope ----------------------------------------------------------------------------------------


def period(text: str) -> tuple[str, str]:
    """`yyyy-MM` or `yyyy-MM-dd..yyyy-MM-dd` as (first day, last day), inclusive."""
    m = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", text)
    if m:
        year, month = int(m[1]), int(m[2])
        return f"{text}-01", f"{text}-{calendar.monthrange(year, month)[1]:02d}"
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", text)
    try:
        first, last = (dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2])) if m else (None, None)
    except ValueError:
        first = last = None
    if first is None or first > last:
        raise ReplayError(f"--period {text!r}: give a month (yyyy-MM) or days yyyy-MM-dd..yyyy-MM-dd, first ≤ last")
    return first.isoformat(), last.isoformat()


def instant(text: str) -> int:
    """An ISO-8601 time (UTC when it names no zone) as ms since the epoch."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ReplayError(f"--from-time {text!r}: give an ISO-8601 time, e.g. 2024-11-05T08:00:00+08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Scope:
    """What is compared: input events from an offset (in each input partition) or a record time on, and
    records whose settlement date falls in a period."""

    from_offset: int | None = None
    from_time_ms: int | None = None
    first_day: str | None = None  # yyyy-MM-dd, inclusive
    last_day: str | None = None

    @property
    def windowed(self) -> bool:
        return self.from_offset is not None or self.from_time_ms is not None

    def takes(self, r: Logged) -> bool:
        return (self.from_offset is None or r.offset >= self.from_offset) and \
               (self.from_time_ms is None or r.timestamp_ms >= self.from_time_ms)

    def dated(self, day: str | None) -> bool:
        """Whether a settlement date (or a statement's month, yyyy-MM) is in the period."""
        if self.first_day is None:
            return True
        if day is None:
            return False
        return self.first_day[:len(day)] <= day <= self.last_day[:len(day)]


def settlement_day(topic: str, doc: dict | None) -> str | None:
    """The settlement date a record carries (a statement: its month); None for anything undated."""
    if not doc:
        return None
    if topic == topics.RESULTS:
        info = (doc.get("output") or {}).get("setlinfo") if isinstance(doc.get("output"), dict) else None
        return info["setl_time"][:10] if info else None
    if topic == topics.CLEARING:
        return doc["setl_time"][:10] if doc.get("setl_time") else None
    if topic == topics.STATEMENTS:
        return doc.get("setlym")
    return None


# -- what a replay finds ----------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """One topic's comparison: records on each side (copies included), distinct values identical or
    paired and different, values on one side only, and copies written more than once."""

    recorded: int = 0
    recomputed: int = 0
    identical: int = 0
    different: int = 0
    only_recorded: int = 0
    only_recomputed: int = 0
    copies: int = 0


@dataclass(frozen=True, slots=True)
class Difference:
    topic: str
    kind: str  # "different", "only recorded", "only recomputed"
    what: str  # the setl_id, statement id, or what identifies the record
    where: str  # the recorded record's position, or "not recorded"
    day: str | None  # its settlement date
    fields: tuple[tuple[str, Any, Any], ...] = ()  # (path, recorded, recomputed), MISSING where absent
    derivations: tuple[list | None, list | None] = (None, None)  # setl_proc_info, recorded and recomputed


@dataclass
class Outcome:
    tallies: dict[str, Tally]
    differences: list[Difference]
    events: int  # input events in the window
    first_event: Logged | None  # the earliest of them
    ops: int  # ledger.ops records taken
    foreign: int  # records on internal topics yibao did not write (dead-lettered, by the service as here)
    unchecked: int  # ops whose input is no longer on its topic (retention): taken as recorded
    recorded_results: list[Logged]
    recomputed_results: list[tuple[Record, Origin]]

    @property
    def identical(self) -> bool:
        return not self.differences


# -- the replay -------------------------------------------------------------------------------------


class Replay:
    """One replay of a `Log` under a `PolicyBook`; `run()` once. `compare` off (a what-if) skips the
    comparison of records, which then differ by design; `advance(n)` is told of every record taken."""

    def __init__(self, log: Log, book: PolicyBook, partitions: int, max_bytes: int, scope: Scope = Scope(),
                 compare: bool = True, inputs_may_expire: bool = False,
                 advance: Callable[[int], None] = lambda n: None, answer_days: int | None = ANSWER_DAYS) -> None:
        beyond = [f"{t}[{p}]" for t, p in log.parts if p >= partitions]
        if beyond:
            raise ReplayError(f"{', '.join(sorted(beyond))}: beyond the {partitions} partitions given; pass the "
                              "service's count (--partitions, YIBAO_PARTITIONS)")
        self.log, self.book, self.partitions, self.max_bytes = log, book, partitions, max_bytes
        self.answer_days = answer_days
        self.scope, self.compare, self.inputs_may_expire, self.advance = scope, compare, inputs_may_expire, advance
        self.tallies = {t: Tally() for t in COMPARED}
        self.differences: list[Difference] = []
        # chain records the replay wrote, by identity, in the order written: (record, its input, its date)
        self.twins: dict[str, dict[tuple, list[tuple[Record, Origin, str | None]]]] = {t: defaultdict(list) for t in CHAIN}
        self.used: dict[tuple, int] = defaultdict(int)  # identity -> recorded records matched with it so far
        self.produced: dict[str, list[tuple[Record, Origin]]] = {t: [] for t in OUTPUTS}
        self.window: set[Origin] = set()
        self.window_start_ms: int | None = None
        self.first_input: dict[tuple[str, int], int] = {tp: rs[0].offset for tp, rs in log.parts.items() if tp[0] in INPUTS}
        self.first_event: Logged | None = None
        self.events = self.ops = self.foreign = self.unchecked = 0

    def run(self) -> Outcome:
        self._route()
        self._ledger()
        self._clearing()
        if self.compare:
            for topic in CHAIN:
                self._unmatched_twins(topic)
            for topic in OUTPUTS:
                self._outputs(topic)
            rank = {t: i for i, t in enumerate((topics.RESULTS, topics.CLEARING, topics.STATEMENTS, topics.REJECTED,
                                                topics.LEDGER_OPS))}
            self.differences.sort(key=lambda d: (rank[d.topic], d.day or "", d.what, d.where))
        return Outcome(self.tallies, self.differences, self.events, self.first_event, self.ops, self.foreign,
                       self.unchecked, self.log.of(topics.RESULTS), self.produced[topics.RESULTS])

    def in_scope(self, origin: Origin, day: str | None) -> bool:
        """Whether a recomputed record is compared: its input event in the window, its date in the period."""
        return (not self.scope.windowed or origin in self.window) and self.scope.dated(day)

    def recorded_in_scope(self, r: Logged, day: str | None) -> bool:
        """The same for a recorded record with no recomputed twin: recorded from the window's first
        event on (its input is not known)."""
        return (not self.scope.windowed or (self.window_start_ms is not None and r.timestamp_ms >= self.window_start_ms)) \
            and self.scope.dated(day)

    # -- stage 1: the router ------------------------------------------------------------------------

    def _route(self) -> None:
        for topic in INPUTS:
            for r in self.log.of(topic):
                origin = (r.topic, r.partition, r.offset)
                if self.scope.takes(r):
                    self.events += 1
                    self.window.add(origin)
                    if self.first_event is None or (r.timestamp_ms, r.where) < (self.first_event.timestamp_ms,
                                                                                self.first_event.where):
                        self.first_event = r
                source = Source(r.topic, r.partition, r.offset, r.timestamp_ms)
                for out in route(r.value, r.key, dict(r.headers), source, self.partitions, self.max_bytes):
                    if out.topic == topics.LEDGER_OPS:
                        self.twins[out.topic][("router", *origin, out.partition)].append((out, origin, None))
                    elif out.topic == topics.CLEARING:
                        self.twins[out.topic][("command", *origin, out.partition)].append((out, origin, None))
                    else:
                        self.produced[out.topic].append((out, origin))
                self.advance(1)
        self.window_start_ms = self.first_event.timestamp_ms if self.first_event else None

    # -- stage 2: the ledger ------------------------------------------------------------------------

    def _ledger(self) -> None:
        ledgers = PartitionLedgers(self.book, self.partitions, self.answer_days)
        for p in range(self.partitions):
            ledgers.reset(p)
        logs = {p: self.log.parts[topics.LEDGER_OPS, p] for p in self.log.partitions(topics.LEDGER_OPS)}
        at = dict.fromkeys(logs, 0)
        waiting: dict[int, tuple] = {}  # partition -> the identity of the op it waits for (decoded once)
        left = {p for p in logs if logs[p]}
        while left:
            moved = False
            for p in sorted(left):
                while at[p] < len(logs[p]):
                    rec = logs[p][at[p]]
                    ident, op = waiting.pop(p, None) or _op_identity(rec)
                    if ident not in self.twins[topics.LEDGER_OPS] and _awaited(ident, logs, at):
                        waiting[p] = (ident, op)
                        break
                    self._take_op(ledgers, rec, ident, op)
                    at[p] += 1
                    moved = True
                if at[p] == len(logs[p]):
                    left.discard(p)
            if not moved and left:  # partitions waiting on one another: only a forged log does that
                p = min(left)
                ident, op = waiting.pop(p)
                self._take_op(ledgers, logs[p][at[p]], ident, op, forced=True)
                at[p] += 1
                left -= {p} if at[p] == len(logs[p]) else set()

    def _take_op(self, ledgers: PartitionLedgers, rec: Logged, ident: tuple, op: dict | None, forced: bool = False) -> None:
        twin, copy = (None, False) if forced else self._twin(topics.LEDGER_OPS, ident)
        origin = self._check(rec, ident, op, twin, copy, None)
        value = twin[0].value if twin is not None else rec.value
        for out in ledgers.apply(rec.partition, rec.offset, value, emit=True, timestamp_ms=rec.timestamp_ms):
            self._produced(out, origin)
        self.ops += 1
        self.advance(1)

    def _produced(self, out: Record, origin: Origin) -> None:
        if out.topic == topics.LEDGER_OPS:
            ident = _op_identity_of(codec.decode_record("ledger_op", out.value), out.partition)
            self.twins[out.topic][ident].append((out, origin, None))
        elif out.topic == topics.CLEARING:
            entry = codec.decode_record("clearing_entry", out.value)
            self.twins[out.topic][("entry", entry["setl_id"])].append((out, origin, entry["setl_time"][:10]))
        else:
            self.produced[out.topic].append((out, origin))

    # -- stage 3: the clearing ------------------------------------------------------------------------

    def _clearing(self) -> None:
        clearings = PartitionClearing()
        for p in range(self.partitions):
            clearings.reset(p)
        for rec in self.log.of(topics.CLEARING):
            ident, doc = _entry_identity(rec)
            twin, copy = self._twin(topics.CLEARING, ident)
            day = settlement_day(topics.CLEARING, doc) if ident[0] == "entry" else None
            origin = self._check(rec, ident, doc, twin, copy, day)
            value, headers = (twin[0].value, twin[0].headers) if twin is not None else (rec.value, rec.headers)
            for out in clearings.apply(rec.partition, rec.offset, value, emit=True, timestamp_ms=rec.timestamp_ms,
                                       headers=dict(headers)):
                self._produced(out, origin)
            self.advance(1)

    # -- comparing the chain, position by position --------------------------------------------------------

    def _twin(self, topic: str, ident: tuple) -> tuple[tuple[Record, Origin, str | None] | None, bool]:
        """The record the replay wrote for the next recorded one with this identity, and whether the
        recorded one is a copy (the service wrote it once more than the replay: at-least-once)."""
        made = self.twins[topic].get(ident)
        if not made:
            return None, False
        k = self.used[ident]
        self.used[ident] = k + 1
        return (made[k], False) if k < len(made) else (made[-1], True)

    def _check(self, rec: Logged, ident: tuple, doc: dict | None, twin: tuple | None, copy: bool,
               day: str | None) -> Origin:
        """Compare a recorded chain record with its twin; the input it comes from."""
        if twin is not None:
            origin, day = twin[1], twin[2] or day
        elif doc is not None and "source_topic" in doc:
            origin = (doc["source_topic"], doc["source_partition"], doc["source_offset"])
        else:
            origin = (rec.topic, rec.partition, rec.offset)
        if not self.compare:
            return origin
        if ident[0] == "foreign":
            self.foreign += 1
            return origin
        if twin is None and ident[0] in ("router", "command") and self.inputs_may_expire and \
                ident[3] < self.first_input.get((ident[1], ident[2]), 0):
            self.unchecked += 1  # its input is past the topic's retention
            return origin
        if ident[0] == "entry" and not (self.in_scope(origin, day) if twin else self.recorded_in_scope(rec, day)):
            return origin
        tally = self.tallies[rec.topic]
        tally.recorded += 1
        if twin is None:
            tally.only_recorded += 1
            self._differ(rec.topic, "only recorded", _label(ident), rec.where, day, doc, None)
            return origin
        out = twin[0]
        if out.value == rec.value and out.partition == rec.partition:
            if copy:
                tally.copies += 1
            else:
                tally.identical += 1
            return origin
        tally.different += 1
        extra = [("partition", rec.partition, out.partition)] if out.partition != rec.partition else []
        self._differ(rec.topic, "different", _label(ident), rec.where, day, document(rec.topic, rec),
                     document(out.topic, out), extra)
        return origin

    def _unmatched_twins(self, topic: str) -> None:
        """Count what the replay wrote on a chain topic; what no recorded record matched is missing there."""
        tally = self.tallies[topic]
        for ident, made in self.twins[topic].items():
            for k, (out, origin, day) in enumerate(made):
                if ident[0] == "entry" and not self.in_scope(origin, day):
                    continue
                tally.recomputed += 1
                if k >= self.used[ident]:
                    tally.only_recomputed += 1
                    self._differ(topic, "only recomputed", _label(ident), "not recorded", day, None, document(topic, out))

    # -- comparing the outputs, as sets ------------------------------------------------------------------

    def _outputs(self, topic: str) -> None:
        tally = self.tallies[topic]
        recorded: dict[bytes, list[Logged]] = {}
        for r in self.log.of(topic):
            recorded.setdefault(r.value, []).append(r)
        produced: dict[bytes, list[tuple[Record, Origin]]] = {}
        for out, origin in self.produced[topic]:
            produced.setdefault(out.value, []).append((out, origin))
        dated = self.scope.first_day is not None
        left_out = []
        for value, made in produced.items():
            out, origin = made[0]
            doc = document(topic, out) if dated else None
            same = recorded.pop(value, [])
            if not self.in_scope(origin, settlement_day(topic, doc)):
                continue
            matched = min(len(same), len(made))
            tally.recorded += len(same)
            tally.recomputed += len(made)
            tally.identical += matched
            tally.copies += len(same) - matched  # written again by the service (at-least-once)
            if len(made) > matched:
                doc = doc or document(topic, out)
                left_out += [(doc, out, origin)] * (len(made) - matched)
        left_rec = []
        for value, copies in recorded.items():
            doc = document(topic, copies[0])
            if self.recorded_in_scope(copies[0], settlement_day(topic, doc)):
                tally.recorded += len(copies)
                left_rec += [(doc, r) for r in copies]
        self._pair(topic, left_rec, left_out)

    def _pair(self, topic: str, left_rec: list, left_out: list) -> None:
        """Pair what is left on each side by what identifies it (first with the same subject too: a
        settlement's setl_id), compare the pairs field by field; the rest is on one side only."""
        tally = self.tallies[topic]
        for exact in (True, False):
            waiting: dict[tuple, list] = defaultdict(list)
            for item in left_out:
                waiting[_output_key(topic, item[0], item[1].key, exact)].append(item)
            rest = []
            for doc, rec in left_rec:
                mates = waiting.get(_output_key(topic, doc, rec.key, exact))
                if not mates:
                    rest.append((doc, rec))
                    continue
                out_doc, out, _ = mates.pop(0)
                tally.different += 1
                self._differ(topic, "different", _what(topic, doc or out_doc), rec.where,
                             settlement_day(topic, doc) or settlement_day(topic, out_doc), doc, out_doc)
            left_rec = rest
            left_out = [item for mates in waiting.values() for item in mates]
        for doc, rec in left_rec:
            tally.only_recorded += 1
            self._differ(topic, "only recorded", _what(topic, doc), rec.where, settlement_day(topic, doc), doc, None)
        for doc, out, _ in left_out:
            tally.only_recomputed += 1
            self._differ(topic, "only recomputed", _what(topic, doc), "not recorded", settlement_day(topic, doc), None, doc)

    def _differ(self, topic: str, kind: str, what: str, where: str, day: str | None, recorded: dict | None,
                recomputed: dict | None, extra: list | None = None) -> None:
        found = list(extra or [])
        if recorded is not None and recomputed is not None:
            found += fields(recorded, recomputed)
        steps = (derivation(recorded), derivation(recomputed))
        if kind == "different" and not found and steps[0] != steps[1]:
            found.append(("output.setlinfo.setl_proc_info", "(derivation below)", "(derivation below)"))
        self.differences.append(Difference(topic, kind, what, where, day, tuple(found), steps))


# -- identities ---------------------------------------------------------------------------------------


def _op_identity_of(op: dict, partition: int) -> tuple:
    """What identifies an op on ledger.ops: its writer's numbering, or (the router's) its source and partition."""
    if op["via_partition"] >= 0:
        return ("ledger", op["via_partition"], op["via_offset"], op["seq"])
    return ("router", op["source_topic"], op["source_partition"], op["source_offset"], partition)


def _op_identity(rec: Logged) -> tuple[tuple, dict | None]:
    try:
        op = codec.decode_record("ledger_op", rec.value)
    except ValueError:
        return ("foreign", rec.partition, rec.offset), None
    return _op_identity_of(op, rec.partition), op


def _awaited(ident: tuple, logs: dict[int, list[Logged]], at: dict[int, int]) -> bool:
    """Whether a ledger-written op is still to be written: its writer has not yet taken the op at
    via_offset that writes it (and has it in its log)."""
    if ident[0] != "ledger" or ident[1] not in logs:
        return False
    writer = logs[ident[1]]
    return at[ident[1]] < len(writer) and writer[at[ident[1]]].offset <= ident[2]


def _entry_identity(rec: Logged) -> tuple[tuple, dict | None]:
    command = dict(rec.headers).get(CLEARING_COMMAND[0]) == CLEARING_COMMAND[1]
    try:
        doc = codec.decode_record("ledger_op" if command else "clearing_entry", rec.value)
    except ValueError:
        return ("foreign", rec.partition, rec.offset), None
    if command:
        return ("command", doc["source_topic"], doc["source_partition"], doc["source_offset"], rec.partition), doc
    return ("entry", doc["setl_id"]), doc


def _label(ident: tuple) -> str:
    kind = ident[0]
    if kind == "router":
        return f"op routed from {ident[1]}[{ident[2]}]@{ident[3]} to ledger.ops[{ident[4]}]"
    if kind == "ledger":
        return f"op written by ledger.ops[{ident[1]}]@{ident[2]} (#{ident[3]})"
    if kind == "command":
        return f"clearing command from {ident[1]}[{ident[2]}]@{ident[3]} to clearing.entries[{ident[4]}]"
    if kind == "entry":
        return ident[1]
    return f"record at [{ident[1]}]@{ident[2]}"


def _setlinfo(doc: dict | None) -> dict | None:
    output = doc.get("output") if doc else None
    return output.get("setlinfo") if isinstance(output, dict) else None


def _output_key(topic: str, doc: dict | None, key: bytes | None, exact: bool) -> tuple:
    """What pairs a recorded output with a recomputed one (`exact`: with its subject as well)."""
    if doc is None:
        return ("unreadable", object())  # pairs with nothing
    if topic == topics.RESULTS:
        base = (key, doc.get("infno"), doc.get("inf_refmsgid"))
        if not exact:
            return base
        output = doc.get("output") if isinstance(doc.get("output"), dict) else {}
        info = output.get("setlinfo") or {}
        return (*base, info.get("setl_id") or output.get("psn_no") or output.get("fixmedins_code"))
    if topic == topics.REJECTED:
        return (doc.get("source_topic"), doc.get("partition"), doc.get("offset"))
    return (key,)


def _what(topic: str, doc: dict | None) -> str:
    if doc is None:
        return "an unreadable record"
    if topic == topics.RESULTS:
        info = _setlinfo(doc)
        return info["setl_id"] if info else f"{doc.get('infno')} {doc.get('inf_refmsgid')}"
    if topic == topics.REJECTED:
        return f"reject of {doc.get('source_topic')}[{doc.get('partition')}]@{doc.get('offset')}"
    return str(doc.get("statement_id"))


# -- field by field -------------------------------------------------------------------------------------


def derivation(doc: dict | None) -> list | None:
    """A result's derivation: the steps of its setlinfo (`setl_proc_info`), None when it has none."""
    info = _setlinfo(doc)
    return info.get("setl_proc_info") if info else None


def _readable(value: Any) -> Any:
    """Bytes that hold a JSON document (an op's request body, a hand-over payload) as that document."""
    if isinstance(value, bytes) and value[:1] in (b"{", b"["):
        try:
            return json.loads(value, parse_float=Decimal)
        except ValueError:
            pass
    return value


def fields(recorded: Any, recomputed: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf where two decoded records differ, as (path, recorded, recomputed); a derivation
    (`setl_proc_info`) is left to `derivation`."""
    if path.endswith("setl_proc_info"):
        return []
    a, b = _readable(recorded), _readable(recomputed)
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a) + [k for k in b if k not in a]
        return [d for k in keys for d in fields(a.get(k, MISSING), b.get(k, MISSING), f"{path}.{k}" if path else k)]
    if isinstance(a, list) and isinstance(b, list):
        n = max(len(a), len(b))
        return [d for i in range(n) for d in fields(a[i] if i < len(a) else MISSING, b[i] if i < len(b) else MISSING,
                                                     f"{path}[{i}]")]
    same = a == b and type(a) is type(b) and (not isinstance(a, Decimal) or str(a) == str(b))  # 332.5 is not 332.50
    return [] if same else [(path, a, b)]

