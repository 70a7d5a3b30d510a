"""Snapshots of the partition states (ledger, clearing) with the offset each reflects, so a start or a
rebalance replays only the log after the newest usable snapshot instead of the whole log.

A snapshot is a cache of a function of the log, never a source of truth (invariant 4): it is used only
when it provably belongs to the log being read, and otherwise ignored (the log is replayed from 0):
- the same code, the same policy files (a fingerprint of each is in the header: state computed
  by other rules is not this log's state) and the same settings that shape state (the answer window);
- the same log: the header holds the SHA-256 of the value of the last record the state took (offset
  - 1); before use, that record is read back from the broker and compared. A snapshot from another
  cluster, an embedded-broker life that was not restored, or a truncated topic is refused.

File: `<dir>/<topic>/<partition>/<offset:012d>.snap`: one JSON header line, then the state pickled.
Only the classes of yibao's state (and Decimal, date, set) may be unpickled (`_Loader.find_class`),
so a planted file cannot run code; the directory belongs to the service like its code does.

Writing forks the process (as Redis's BGSAVE does): the child pickles the copy-on-write state of the
partitions due and writes each file atomically (temporary file, fsync, rename), keeping the newest
`KEEP` per partition; the worker goes on at once. One child at a time; a snapshot due meanwhile
waits for the next batch.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from pathlib import Path

log = logging.getLogger("yibao.snapshots")

FORMAT = 1
KEEP = 2
_CODE_DIRS = ("processors", "schemas", "streams")
_ALLOWED = {("decimal", "Decimal"), ("datetime", "date"), ("datetime", "datetime"), ("collections", "deque"), ("builtins", "set"),
            ("builtins", "frozenset")}
_ALLOWED_MODULES = ("schemas.models", "streams.groups", "streams.clearing")  # and every processors.* module


def fingerprint(*roots: Path, pattern: str = "**/*") -> str:
    """SHA-256 over the relative names and contents of the files under `roots`."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(p for p in Path(root).glob(pattern) if p.is_file() and "__pycache__" not in p.parts):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_fingerprint() -> str:
    base = Path(__file__).resolve().parents[1]
    return fingerprint(*(base / d for d in _CODE_DIRS), pattern="**/*.py")


def value_hash(value: bytes | None) -> str:
    return hashlib.sha256(value or b"").hexdigest()


class _Saver(pickle.Pickler):
    def __init__(self, file, shared: object) -> None:
        super().__init__(file, protocol=5)
        self.shared = shared

    def persistent_id(self, obj):  # the policy book is configuration, not state: referenced, not copied
        return "book" if obj is self.shared else None


class _Loader(pickle.Unpickler):
    def __init__(self, file, shared: object) -> None:
        super().__init__(file)
        self.shared = shared

    def persistent_load(self, pid):
        if pid != "book":
            raise pickle.UnpicklingError(f"unknown reference {pid!r}")
        return self.shared

    def find_class(self, module: str, name: str):
        """Only the named classes and the classes *defined* in yibao's state modules: not a function,
        not a name those modules import (`processors.policy.Path`), not a dotted path to an attribute
        (`Path.write_text`): any of those would let a planted file call code."""
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if "." not in name and (module.startswith("processors.") or module in _ALLOWED_MODULES):
            found = super().find_class(module, name)
            if isinstance(found, type) and found.__module__ == module:
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a yibao state")


class Snapshots:
    """The snapshots of one worker: where, how often, and the fingerprints a usable one carries."""

    def __init__(self, root: Path, every: int, policies: Path, shared: object, config: str = "") -> None:
        self.root, self.every, self.shared, self.config = Path(root), every, shared, config
        self.code, self.policies = code_fingerprint(), fingerprint(policies)
        self.taken: dict[tuple[str, int], int] = {}  # (topic, partition) -> offset of the last snapshot written
        self._child: int | None = None
        self._before: dict[tuple[str, int], int] = {}  # what `taken` said before the child's snapshots

    def _folder(self, topic: str, partition: int) -> Path:
        return self.root / topic / str(partition)

    def candidates(self, topic: str, partition: int, upto: int) -> list[tuple[int, Path]]:
        """Snapshot files at offsets in (0, upto], newest first."""
        found = []
        for path in self._folder(topic, partition).glob("*.snap"):
            try:
                offset = int(path.stem)
            except ValueError:
                continue
            if 0 < offset <= upto:
                found.append((offset, path))
        return sorted(found, reverse=True)

    def load(self, path: Path, topic: str, partition: int, last_value_hash: str):
        """The state in `path`, or None (with the reason logged) when it is not this log's, these
        rules' and this code's state at its offset."""
        try:
            with path.open("rb") as f:
                header = json.loads(f.readline())
                if (header.get("format"), header.get("topic"), header.get("partition")) != (FORMAT, topic, partition):
                    reason = "another format or partition"
                elif header.get("code") != self.code:
                    reason = "written by other code"
                elif header.get("policies") != self.policies:
                    reason = "computed under other policy files"
                elif header.get("config") != self.config:
                    reason = f"computed with other settings ({header.get('config')}, not {self.config})"
                elif header.get("last") != last_value_hash:
                    reason = "the log's record before its offset differs: another log"
                else:
                    return _Loader(f, self.shared).load()
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as e:
            reason = f"unreadable: {type(e).__name__}: {e}"
        log.warning("snapshot %s not used: %s", path, reason)
        return None

    def due(self, topic: str, partitions: dict[int, int]) -> list[int]:
        """The partitions (of `partitions`: partition -> next offset) with `every` records or more since
        their last snapshot."""
        return [p for p, nxt in partitions.items() if nxt - self.taken.get((topic, p), 0) >= self.every]

    def loaded(self, topic: str, partition: int, offset: int) -> None:
        self.taken[topic, partition] = offset

    def save(self, topic: str, items: list[tuple[int, int, str, object]]) -> bool:
        """Write (partition, offset, last value hash, state) for each item in a forked child; False when
        the previous child is still writing (nothing is started)."""
        if not items or self._busy():
            return False
        pid = os.fork()
        if pid == 0:  # the child: a frozen copy of the states; no logging (locks may be held by other threads)
            code = 0
            try:
                for partition, offset, last, state in items:
                    self._write(topic, partition, offset, last, state)
            except BaseException:  # noqa: BLE001 - reported to the parent by the exit code
                code = 1
            finally:
                os._exit(code)
        self._child = pid
        self._before = {(topic, p): self.taken.get((topic, p), 0) for p, _, _, _ in items}
        for partition, offset, _, _ in items:
            self.taken[topic, partition] = offset
        return True

    def wait(self) -> None:
        """Wait for the child writing snapshots, if any (tests; a stop)."""
        if self._child is not None:
            self._reap(0)

    def _busy(self) -> bool:
        return self._child is not None and not self._reap(os.WNOHANG)

    def _reap(self, flags: int) -> bool:
        try:
            pid, status = os.waitpid(self._child, flags)
        except ChildProcessError:  # reaped by someone else
            pid, status = self._child, 0
        if pid == 0:
            return False
        if os.waitstatus_to_exitcode(status) != 0:
            log.warning("a snapshot writer failed (exit status %s): the next batch retries", status)
            self.taken.update(self._before)
        self._child = None
        return True

    def _write(self, topic: str, partition: int, offset: int, last: str, state: object) -> None:
        folder = self._folder(topic, partition)
        folder.mkdir(parents=True, exist_ok=True)
        header = {"format": FORMAT, "topic": topic, "partition": partition, "offset": offset, "last": last,
                  "code": self.code, "policies": self.policies, "config": self.config}
        tmp = folder / f".{offset:012d}.snap.tmp"
        with tmp.open("wb") as f:
            f.write(json.dumps(header, sort_keys=True).encode() + b"\n")
            _Saver(f, self.shared).dump(state)
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(folder / f"{offset:012d}.snap")
        for _, old in self.candidates(topic, partition, 1 << 62)[KEEP:]:
            old.unlink(missing_ok=True)

