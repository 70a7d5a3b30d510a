"""The audit archive on disk (connectors/archive.py): segments per topic-partition per day, a
hash-chained manifest, and `verify` naming every kind of tampering an auditor must catch: an edited
record (a changed amount), a deleted file, reordered or removed manifest lines, an edited manifest."""
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import fastavro
import pytest

from connectors.archive import MANIFEST, SCHEMA, ArchiveBusy, ArchiveWriter, read_manifest, records, verify

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400_000
T0 = 1_730_419_200_000  # 2024-11-01T00:00:00Z


def _result(n: int, amount: str) -> bytes:
    return json.dumps({"infno": "2207", "inf_refmsgid": f"M{n}", "output": {"hifp_pay": amount}}).encode()


@pytest.fixture
def archive(tmp_path):
    """Three days of records on two partitions of settle.results and one of settle.requests."""
    root = tmp_path / "archive"
    w = ArchiveWriter(root)
    for n in range(30):
        day = n // 10
        w.add("settle.results", n % 2, n // 2, T0 + day * DAY + n, b"H1", [("content-type", b"application/json")],
              _result(n, f"{n}.50"))
        w.add("settle.requests", 0, n, T0 + day * DAY + n, b"P1", [], b'{"infno":"2207"}')
    w.close()
    return root


def test_segments_per_topic_partition_per_day_with_a_chained_manifest(archive):
    entries = list(read_manifest(archive))
    assert [(e["topic"], e["partition"], e["period"]) for e in entries if e["topic"] == "settle.requests"] == \
           [("settle.requests", 0, d) for d in ("2024-11-01", "2024-11-02", "2024-11-03")]
    assert sum(e["records"] for e in entries) == 60
    assert [e["prev"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    first = next(e for e in entries if e["topic"] == "settle.results" and e["partition"] == 1)
    got = list(records(archive, first))
    assert [r["offset"] for r in got] == list(range(first["first_offset"], first["last_offset"] + 1))
    assert got[0]["headers"] == [{"key": "content-type", "value": b"application/json"}] and got[0]["key"] == b"H1"
    problems, head = verify(archive)
    assert problems == [] and head == entries[-1]["hash"]


def test_an_edited_amount_is_named_even_in_a_valid_avro_file(archive):
    entry = next(e for e in read_manifest(archive) if e["topic"] == "settle.results")
    path = archive / entry["file"]
    rows = list(records(archive, entry))
    rows[0]["value"] = rows[0]["value"].replace(b'"0.50"', b'"9.50"')
    with path.open("wb") as f:
        fastavro.writer(f, SCHEMA, rows, codec="deflate")
    problems, _ = verify(archive)
    assert problems == [f"{MANIFEST} line {entry['seq'] + 1} ({entry['file']}): its SHA-256 differs from the "
                        "manifest's: the file was changed"]


def test_a_forged_manifest_line_breaks_the_chain(archive):
    lines = (archive / MANIFEST).read_text().splitlines()
    entry = json.loads(lines[2])
    entry["records"] -= 1  # a forger hides a record and recomputes nothing
    lines[2] = json.dumps(entry)
    (archive / MANIFEST).write_text("\n".join(lines) + "\n")
    problems, _ = verify(archive)
    assert any("line 3" in p and "the line was edited" in p for p in problems)


def test_a_deleted_file_and_a_removed_manifest_line_are_named(archive, tmp_path):
    entries = list(read_manifest(archive))
    middle = next(e for e in entries if e["topic"] == "settle.requests" and e["period"] == "2024-11-02")
    (archive / middle["file"]).unlink()
    problems, _ = verify(archive)
    assert problems == [f"{MANIFEST} line {middle['seq'] + 1} ({middle['file']}): the file is missing"]

    lines = (archive / MANIFEST).read_text().splitlines()
    del lines[middle["seq"]]
    (archive / MANIFEST).write_text("\n".join(lines) + "\n")
    problems, _ = verify(archive)
    assert any("out of chain" in p for p in problems)
    assert any("settle.requests[0] offsets 10..19 are in no segment: a segment is missing" in p for p in problems)


def test_reordered_manifest_lines_are_named(archive):
    lines = (archive / MANIFEST).read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    (archive / MANIFEST).write_text("\n".join(lines) + "\n")
    problems, _ = verify(archive)
    assert any(p.startswith(f"{MANIFEST} line 1") and "out of chain" in p for p in problems)


def test_a_file_the_manifest_does_not_list_is_named(archive):
    entry = next(read_manifest(archive))
    stray = (archive / entry["file"]).with_name("2024-11-09-000000000099.avro")
    shutil.copy(archive / entry["file"], stray)
    problems, _ = verify(archive)
    assert problems == [f"{stray.relative_to(archive).as_posix()}: a segment the manifest does not list"]


def test_a_reopened_writer_continues_after_what_is_sealed(archive):
    w = ArchiveWriter(archive)
    assert w.add("settle.requests", 0, 29, T0 + 2 * DAY, None, [], b"again") is False  # archived already
    assert w.add("settle.requests", 0, 30, T0 + 2 * DAY + 5, None, [], b"next") is True
    w.close()
    assert [e["last_offset"] for e in read_manifest(archive) if e["topic"] == "settle.requests"][-1] == 30
    assert verify(archive)[0] == []


KILLED_WRITER = """
import os, signal, sys
from connectors.archive import ArchiveWriter
w = ArchiveWriter(sys.argv[1])
for n in range(30, 40):
    w.add("settle.requests", 0, n, {t} + n, None, [], b"r%d" % n)
    if n % 3 == 2:
        w.flush()  # a block per flush, as the archiver flushes per batch
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_killed_mid_segment_leaves_whole_blocks_the_next_writer_seals(archive):
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER.format(t=T0 + 2 * DAY), str(archive)], cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL
    [open_segment] = archive.glob("*/*/*.avro.open")
    with open_segment.open("ab") as f:  # and the block being written when it died is cut short
        f.write(b"\x02\x90\x01half a block")
    again = ArchiveWriter(archive)
    assert again.recovered == 9  # offsets 30..38, flushed; 39 was never flushed
    assert not list(archive.glob("*/*/*.open")) and not list(archive.glob("*/*/*.recovering"))
    assert again.next_offset["settle.requests", 0] == 39
    again.close()
    last = [e for e in read_manifest(archive) if e["topic"] == "settle.requests"][-1]
    assert [r["value"] for r in records(archive, last)] == [b"r%d" % n for n in range(30, 39)]
    assert verify(archive)[0] == []


def test_two_writers_on_one_folder_are_refused(archive):
    first = ArchiveWriter(archive)
    with pytest.raises(ArchiveBusy, match="being written by another archiver"):
        ArchiveWriter(archive)
    first.close()
    ArchiveWriter(archive).close()  # free again
