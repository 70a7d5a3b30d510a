"""Ledger groups: which `ledger.ops` partition holds each person's state, and how a binding moves it.

DESIGN.md invariant 2: a family-drawing payment debits the user's and the authorizers' accounts in
one state change, so everyone connected by bindings (a ledger group) lives on one partition.

- The router sends each person's requests to their home partition (`routing.home`). A person whose
  group lives elsewhere is forwarded from home, one hop, to the group's partition: one channel, so
  their requests keep their order.
- Binds and unbinds go to the coordinator (partition 0's second role). It knows every group of two
  or more and where it lives. A bind across two partitions moves the smaller group to the larger:

      coordinator --relocate--> each home of the moving persons: forward them to the new place from
                                now on, and send a marker down the old channel
      home --marker--> old place: nothing more of these persons comes through me
      coordinator --export--> old place: when every marker is in, hand their state over
      old place --import--> new place: the state and the bind; what waited for them is released
      new place --done--> coordinator: the next bind

  Until its import the new place parks what arrives for a moving person; the old place serves the
  moving group (its members' payments may still draw on each other) until the last marker. Moves of
  different groups run at once; a bind or unbind touching a group in a move waits at the coordinator
  (and so does any later one touching the groups it touches), in order.
- Every op a partition writes carries (via_partition, via_offset, seq); a copy written again after
  a crash is recognised by that watermark and skipped, as is a router op delivered twice (by its
  source offset). All of this is a function of the partition's log, rebuilt by replaying it.
- An unbind leaves the group as it is: a larger group stays correct, and splitting it would cost
  the same hand-over for no gain. A bind the ledger then refuses (an unknown authorizer, say) has
  merged the groups all the same, for the same reason.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from processors.ledger import ANSWER_DAYS, Ledger
from processors.policy import PolicyBook
from schemas.models import AccountBindingEvent
from schemas.privacy import mask_id

from . import answers, codec, topics
from .routing import COORDINATOR, Record, Source, Validated, home, rejected

log = logging.getLogger("yibao.groups")

MAX_GROUP = 256  # a bind that would make a larger group is refused (GROUP_TOO_LARGE): one partition serves it
HERE, PARK = -1, -2


class Out:
    """The records handling one op writes; the ops among them are numbered (via_offset, seq)."""

    def __init__(self, partition: int, offset: int, emit: bool, validated: Validated | None = None) -> None:
        self.partition, self.offset, self.emit, self.validated = partition, offset, emit, validated
        self.seq = 0
        self.records: list[Record] = []

    def send(self, to: int, op: dict, kind: str | None = None, payload: dict | None = None) -> None:
        self.seq += 1  # numbered while replaying too, so the numbers are the ones first written
        if self.emit:
            op = dict(op, via_partition=self.partition, via_offset=self.offset, seq=self.seq)
            if kind is not None:
                op.update(kind=kind, payload=json.dumps(payload).encode())
            self.records.append(Record(topics.LEDGER_OPS, op["group"].encode(), codec.encode_record("ledger_op", op),
                                       codec.AVRO_HEADERS, to))

    def extend(self, records: list[Record]) -> None:
        self.records += records


class Coordinator:
    """Partition 0's map of the ledger groups: which persons are bound together and where they live."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.group: dict[str, str] = {}  # person -> their group's id (a member), for groups of two or more
        self.members: dict[str, list[str]] = {}  # group id -> persons
        self.place: dict[str, int] = {}  # group id -> partition
        self.moving: dict[str, tuple[str, str, int]] = {}  # move id -> (surviving group, moving group, to)
        self.busy: set[str] = set()  # the groups of the moves under way
        self.waiting: list[tuple[dict, tuple[str, ...]]] = []  # (bind or unbind, its persons), in arrival order

    def _of(self, psn_no: str) -> tuple[str, list[str], int]:
        g = self.group.get(psn_no)
        if g is None:
            return psn_no, [psn_no], home(psn_no, self.partitions)
        return g, self.members[g], self.place[g]

    def submit(self, op: dict, out: Out) -> None:
        auth = _authorizer(op)
        self.waiting.append((op, (op["group"], auth) if auth else (op["group"],)))
        self._drain(out)

    def done(self, move: str, out: Out) -> None:
        if move not in self.moving:
            log.error("move %s reported done, but it is not under way (%s are)", move, sorted(self.moving))
            return
        survivor, loser, to = self.moving.pop(move)
        self.busy -= {survivor, loser}
        self._join(survivor, loser, to)
        self._drain(out)

    def _drain(self, out: Out) -> None:
        """Start, in order, every waiting bind whose groups are in no move, nor behind one that waits."""
        blocked: set[str] = set()
        still = []
        for op, persons in self.waiting:
            groups = {self._of(p)[0] for p in persons}
            if groups & (self.busy | blocked):
                blocked |= groups
                still.append((op, persons))
            else:
                self._start(op, out)
        self.waiting = still

    def _start(self, op: dict, out: Out) -> None:
        auth = _authorizer(op)
        g_u, m_u, at_u = self._of(op["group"])
        if auth is None:  # an unbind (or what the ledger will refuse) goes where the user lives
            out.send(at_u, dict(op, kind="event"))
            return
        g_a, m_a, at_a = self._of(auth)
        if g_u == g_a:
            out.send(at_u, dict(op, kind="event"))
            return
        if len(m_u) + len(m_a) > MAX_GROUP:
            out.extend(answers.refuse(op, "GROUP_TOO_LARGE", f"binding would join {len(m_u) + len(m_a)} people in "
                                      f"one ledger group; the limit is {MAX_GROUP}") if out.emit else [])
            return
        (survivor, to), (loser, frm) = ((g_u, at_u), (g_a, at_a)) if len(m_u) > len(m_a) else ((g_a, at_a), (g_u, at_u))
        if to == frm:  # already on one partition: nothing moves
            self._join(survivor, loser, to)
            out.send(to, dict(op, kind="event"))
            return
        move = f"{op['source_topic']}/{op['source_partition']}/{op['source_offset']}"
        persons = self._of(loser)[1]
        homes: dict[int, list[str]] = {}
        for p in persons:
            homes.setdefault(home(p, self.partitions), []).append(p)
        self.moving[move] = (survivor, loser, to)
        self.busy |= {survivor, loser}
        for h, ps in sorted(homes.items()):
            out.send(h, op, "relocate", {"move": move, "to": to, "from": frm, "persons": ps})
        out.send(frm, op, "export", {"move": move, "to": to, "persons": persons, "homes": sorted(homes)})
        log.info("moving ledger group of %s (%d persons) from partition %d to %d", mask_id(loser), len(persons), frm, to)

    def _join(self, survivor: str, loser: str, at: int) -> None:
        members = self._of(survivor)[1] + self._of(loser)[1]
        self.members.pop(loser, None)
        self.place.pop(loser, None)
        self.members[survivor] = members
        self.place[survivor] = at
        for p in members:
            self.group[p] = survivor


def _authorizer(op: dict) -> str | None:
    """The authorizer a bind names; None for an unbind, or for bytes that no longer validate (a changed
    schema: the ledger then answers BAD_EVENT where the user lives)."""
    event = codec.decode(op["body"], op["content_type"])
    return event.input.auth_psn_no if isinstance(event, AccountBindingEvent) and event.infno == "acct_bind" else None


@dataclass(slots=True)
class Leaving:
    """A group about to leave this partition: the export order, and the homes whose marker is in."""

    markers: set[int] = field(default_factory=set)
    export: dict | None = None


class PartitionState:
    """One `ledger.ops` partition: its ledger, who lives here, what waits, and (partition 0) the coordinator."""

    def __init__(self, partition: int, partitions: int, book: PolicyBook, answer_days: int | None = ANSWER_DAYS) -> None:
        self.partition, self.partitions = partition, partitions
        self.ledger = Ledger(book, answer_days)
        self.seen: dict[tuple[str, int], tuple[int, int]] = {}  # writer -> position of the last op taken from it
        self.away: dict[str, int] = {}  # persons at home here whose group lives on another partition
        self.guests: set[str] = set()  # persons living here whose home is elsewhere
        self.incoming: set[str] = set()  # persons at home here whose state is on its way back
        self.parked: list[tuple[str, dict]] = []  # (person, op) waiting for that person's state, in arrival order
        self.leaving: dict[str, Leaving] = {}  # move id -> the group leaving this partition
        self.coordinator = Coordinator(partitions) if partition == COORDINATOR else None

    def handle(self, offset: int, op: dict, emit: bool, validated: Validated | None = None) -> list[Record]:
        """Take one decoded `ledger_op`; the records to write (none when replaying, `emit` false)."""
        if not self._fresh(op):
            return []
        out = Out(self.partition, offset, emit, validated)
        handler = _HANDLERS.get(op["kind"])
        if handler is None:
            source = Source(topics.LEDGER_OPS, self.partition, offset, op["source_timestamp"])
            out.extend([Record(topics.REJECTED, None, rejected(op["body"], source, op["content_type"],
                                                               f"ledger_op kind {op['kind']!r} is unknown"),
                               codec.AVRO_HEADERS)] if emit else [])
        else:
            handler(self, op, out)
        return out.records

    def _fresh(self, op: dict) -> bool:
        if op["via_partition"] >= 0:
            writer, position = (topics.LEDGER_OPS, op["via_partition"]), (op["via_offset"], op["seq"])
        else:
            writer, position = (op["source_topic"], op["source_partition"]), (op["source_offset"], 0)
        last = self.seen.get(writer)
        if last is not None and position <= last:
            return False
        self.seen[writer] = position
        return True

    def _where(self, psn_no: str, forwarded: bool) -> int:
        if psn_no in self.incoming:
            return PARK
        away = self.away.get(psn_no)
        if away is not None:
            return away
        if not forwarded or psn_no in self.guests or home(psn_no, self.partitions) == self.partition:
            return HERE  # the router writes only to a person's home; the coordinator only where they live
        return PARK  # forwarded here by their home: their state is on its way

    def _event(self, op: dict, out: Out) -> None:
        psn_no = op["group"]
        if psn_no != "*":
            where = self._where(psn_no, op["via_partition"] >= 0)
            if where == PARK:
                self.parked.append((psn_no, op))
                return
            if where != HERE:
                out.send(where, op)
                return
        out.extend(answers.apply(self.ledger, op, out.emit, self.partitions, out.validated))

    def _coord(self, op: dict, out: Out) -> None:
        if self.coordinator is None:  # written to the wrong partition: pass it on
            out.send(COORDINATOR, op)
        else:
            self.coordinator.submit(op, out)

    def _relocate(self, op: dict, out: Out) -> None:
        p = json.loads(op["payload"])
        for psn_no in p["persons"]:
            if p["to"] == self.partition:
                self.away.pop(psn_no, None)
                self.incoming.add(psn_no)
            else:
                self.away[psn_no] = p["to"]
        out.send(p["from"], op, "marker", {"move": p["move"], "home": self.partition})

    def _marker(self, op: dict, out: Out) -> None:
        p = json.loads(op["payload"])
        self.leaving.setdefault(p["move"], Leaving()).markers.add(p["home"])
        self._hand_over(p["move"], out)

    def _export(self, op: dict, out: Out) -> None:
        p = json.loads(op["payload"])
        self.leaving.setdefault(p["move"], Leaving()).export = op
        self._hand_over(p["move"], out)

    def _hand_over(self, move: str, out: Out) -> None:
        leaving = self.leaving[move]
        if leaving.export is None:
            return
        p = json.loads(leaving.export["payload"])
        if not set(p["homes"]) <= leaving.markers:
            return
        del self.leaving[move]
        state = self.ledger.export_people(p["persons"])
        self.guests.difference_update(p["persons"])
        out.send(p["to"], leaving.export, "import", {"move": move, "persons": p["persons"], "state": state.decode()})

    def _import(self, op: dict, out: Out) -> None:
        p = json.loads(op["payload"])
        self.ledger.import_people(p["state"].encode())
        moved = set(p["persons"])
        for psn_no in moved:
            if home(psn_no, self.partitions) == self.partition:
                self.incoming.discard(psn_no)
            else:
                self.guests.add(psn_no)
        out.extend(answers.apply(self.ledger, op, out.emit, self.partitions, out.validated))  # the bind that moved them
        released = [(x, o) for x, o in self.parked if x in moved]
        self.parked = [(x, o) for x, o in self.parked if x not in moved]
        for _, waiting in released:
            self._event(waiting, out)
        out.send(COORDINATOR, op, "done", {"move": p["move"]})

    def _done(self, op: dict, out: Out) -> None:
        if self.coordinator is not None:
            self.coordinator.done(json.loads(op["payload"])["move"], out)


_HANDLERS = {"event": PartitionState._event, "coord": PartitionState._coord, "relocate": PartitionState._relocate,
             "marker": PartitionState._marker, "export": PartitionState._export, "import": PartitionState._import,
             "done": PartitionState._done}
