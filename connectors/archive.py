"""The audit archive on disk: every record of the topics it is given, as Avro object container files
(fastavro, deflate), one segment per topic-partition per day of record time, and a manifest whose
entries are hash-chained, so a removed, reordered or edited file is detected (`verify`).

Layout under the archive directory:
- `<topic>/<partition>/<yyyy-MM-dd>-<first offset>.avro`: a sealed segment; records in offset order,
  each with its topic, partition, offset, timestamp (ms), key, headers and value bytes as read.
- `<...>.avro.open`: the segment being written (not in the manifest until sealed). Its blocks are
  flushed after every batch, so a writer killed mid-way leaves whole blocks and at most one cut
  short: the next writer on the folder seals the whole blocks (`_recover`).
- `positions.json`: where the service's consumers stood (their committed offsets) when the archive
  last held everything before them; what a restore starts the consumers at (streams/restore.py).
  Operational, not evidence: it is outside the hash chain.
- `.lock`: held by the one writer of the folder.
- `manifest.jsonl`: one line per sealed segment: `seq`, `topic`, `partition`, `period`, `file`,
  `first_offset`, `last_offset`, `records`, `sha256` (of the file), `prev` (the previous line's
  `hash`) and `hash` (SHA-256 of the line's other fields, `prev` included). The last line's `hash`
  is the archive's head: publish it elsewhere and nothing before it can be rewritten unnoticed.

A segment is sealed when its topic-partition reaches a later day, when the writer is closed, and on
`seal_all`. Objects stores map one-to-one: a segment is an immutable object, the manifest an
append-only object (or one object per line).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fastavro
from fastavro.write import Writer

MANIFEST = "manifest.jsonl"
POSITIONS = "positions.json"
GENESIS = "0" * 64
SCHEMA = fastavro.parse_schema({
    "type": "record", "name": "ArchivedRecord", "namespace": "yibao",
    "doc": "One Kafka record as the archiver read it.",
    "fields": [
        {"name": "topic", "type": "string"},
        {"name": "partition", "type": "int"},
        {"name": "offset", "type": "long"},
        {"name": "timestamp", "type": "long", "doc": "the record's Kafka timestamp, ms since the epoch"},
        {"name": "key", "type": ["null", "bytes"], "default": None},
        {"name": "headers", "type": {"type": "array", "items": {
            "type": "record", "name": "Header", "fields": [{"name": "key", "type": "string"},
                                                           {"name": "value", "type": "bytes"}]}}},
        {"name": "value", "type": "bytes"},
    ],
})
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def period_of(timestamp_ms: int) -> str:
    """The UTC day of a record timestamp: the period a segment holds."""
    return (_EPOCH + dt.timedelta(milliseconds=timestamp_ms)).date().isoformat()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _entry_hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(slots=True)
class _Open:
    period: str
    path: Path
    file: object
    writer: Writer
    first_offset: int
    last_offset: int
    records: int = 0


class ArchiveBusy(RuntimeError):
    """Another writer holds the archive folder."""


class ArchiveWriter:
    """Appends records per topic-partition in offset order; seals segments into the manifest."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = (self.root / ".lock").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise ArchiveBusy(f"{self.root} is being written by another archiver") from None
        self.entries = list(read_manifest(self.root))
        self.next_offset: dict[tuple[str, int], int] = {}
        for e in self.entries:
            self.next_offset[e["topic"], e["partition"]] = e["last_offset"] + 1
        self._open: dict[tuple[str, int], _Open] = {}
        self.recovered = sum(self._recover(stale) for stale in sorted(self.root.glob("*/*/*.avro.open")))

    def add(self, topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
            headers: list[tuple[str, bytes]], value: bytes | None) -> bool:
        """Archive one record; False when it is already archived (an offset below the position)."""
        tp = (topic, partition)
        if offset < self.next_offset.get(tp, 0):
            return False
        period = period_of(timestamp_ms)
        seg = self._open.get(tp)
        if seg is not None and period > seg.period:
            self._seal(tp)
            seg = None
        if seg is None:
            seg = self._start(topic, partition, period, offset)
        seg.writer.write({"topic": topic, "partition": partition, "offset": offset, "timestamp": timestamp_ms,
                          "key": key, "headers": [{"key": k, "value": v} for k, v in headers], "value": value or b""})
        seg.last_offset, seg.records = offset, seg.records + 1
        self.next_offset[tp] = offset + 1
        return True

    def flush(self) -> None:
        for seg in self._open.values():
            seg.writer.flush()
            seg.file.flush()

    def seal_all(self) -> None:
        for tp in list(self._open):
            self._seal(tp)

    def close(self) -> None:
        self.seal_all()
        self._lock.close()  # releases the lock

    def write_positions(self, committed: dict[tuple[str, int], int], partitions: int) -> None:
        """Record the consumers' committed offsets, which the archive should already cover (atomic), and
        the topics' partition count."""
        doc = {"partitions": partitions, "committed": [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(committed.items())],
               "archived": [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(self.next_offset.items())]}
        tmp = self.root / f".{POSITIONS}.tmp"
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.root / POSITIONS)

    def _recover(self, stale: Path) -> int:
        """Seal the whole blocks of a segment a crash left open; the records recovered."""
        taken = stale.with_suffix(".recovering")
        stale.rename(taken)
        recovered = 0
        try:
            with taken.open("rb") as f:
                for r in fastavro.reader(f):
                    recovered += self.add(r["topic"], r["partition"], r["offset"], r["timestamp"], r["key"],
                                          [(h["key"], h["value"]) for h in r["headers"]], r["value"])
        except Exception:  # noqa: BLE001 - the block the kill cut short ends the segment, whatever the reader says
            pass
        self.seal_all()
        taken.unlink()
        return recovered

    def _start(self, topic: str, partition: int, period: str, offset: int) -> _Open:
        folder = self.root / topic / str(partition)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{period}-{offset:012d}.avro.open"
        f = path.open("wb")
        seg = _Open(period, path, f, Writer(f, SCHEMA, codec="deflate"), offset, offset)
        self._open[topic, partition] = seg
        return seg

    def _seal(self, tp: tuple[str, int]) -> None:
        seg = self._open.pop(tp)
        seg.writer.flush()
        seg.file.close()
        final = seg.path.with_suffix("")  # drop .open
        seg.path.rename(final)
        prev = self.entries[-1]["hash"] if self.entries else GENESIS
        entry = {"seq": len(self.entries), "topic": tp[0], "partition": tp[1], "period": seg.period,
                 "file": final.relative_to(self.root).as_posix(), "first_offset": seg.first_offset,
                 "last_offset": seg.last_offset, "records": seg.records, "sha256": _sha256(final), "prev": prev}
        entry["hash"] = _entry_hash(entry)
        with (self.root / MANIFEST).open("a", encoding="utf-8") as m:
            m.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
        self.entries.append(entry)


def read_positions(root: Path) -> dict | None:
    path = Path(root) / POSITIONS
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_manifest(root: Path) -> Iterator[dict]:
    path = Path(root) / MANIFEST
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def records(root: Path, entry: dict) -> Iterator[dict]:
    """The records of one sealed segment, in offset order."""
    with (Path(root) / entry["file"]).open("rb") as f:
        yield from fastavro.reader(f)


def verify(root: Path) -> tuple[list[str], str]:
    """Every problem found (empty when the archive is intact) and the head hash. Checks the chain of
    manifest lines, each file's SHA-256, count, offsets and topic-partition, and that the segments of
    each topic-partition follow one another without a gap."""
    root = Path(root)
    problems: list[str] = []
    try:
        entries = list(read_manifest(root))
    except ValueError as e:
        return [f"{MANIFEST}: not JSON lines: {e}"], GENESIS
    prev, ends = GENESIS, {}
    listed = set()
    for n, e in enumerate(entries, start=1):
        where = f"{MANIFEST} line {n} ({e.get('file')})"
        if e.get("seq") != n - 1 or e.get("prev") != prev:
            problems.append(f"{where}: out of chain (seq {e.get('seq')}, expected {n - 1}): a line was removed, "
                            "inserted or reordered")
        if e.get("hash") != _entry_hash(e):
            problems.append(f"{where}: its hash does not match its content: the line was edited")
        prev = e.get("hash", "")
        listed.add(e.get("file"))
        tp = (e.get("topic"), e.get("partition"))
        if tp in ends and e.get("first_offset") != ends[tp] + 1:
            problems.append(f"{where}: {tp[0]}[{tp[1]}] offsets {ends[tp] + 1}..{e.get('first_offset', 0) - 1} are "
                            "in no segment: a segment is missing")
        ends[tp] = e.get("last_offset", -1)
        problems += _check_file(root, e, where)
    for path in sorted(root.glob("*/*/*.avro")):  # an .avro.open segment is not sealed yet: not evidence yet
        name = path.relative_to(root).as_posix()
        if name not in listed:
            problems.append(f"{name}: a segment the manifest does not list")
    return problems, prev


def _check_file(root: Path, e: dict, where: str) -> list[str]:
    path = root / str(e.get("file"))
    if not path.exists():
        return [f"{where}: the file is missing"]
    if _sha256(path) != e.get("sha256"):
        return [f"{where}: its SHA-256 differs from the manifest's: the file was changed"]
    offsets = []
    try:
        for r in records(root, e):
            if (r["topic"], r["partition"]) != (e["topic"], e["partition"]):
                return [f"{where}: holds a record of {r['topic']}[{r['partition']}]"]
            offsets.append(r["offset"])
    except Exception as err:  # noqa: BLE001 - whatever the reader says, the file is not a valid segment
        return [f"{where}: unreadable: {type(err).__name__}: {err}"]
    if len(offsets) != e.get("records") or offsets != sorted(set(offsets)) or \
            (offsets and (offsets[0], offsets[-1]) != (e.get("first_offset"), e.get("last_offset"))):
        return [f"{where}: its records ({len(offsets)}, offsets {offsets[:1]}..{offsets[-1:]}) are not those listed"]
    return []
