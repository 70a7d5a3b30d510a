"""Restoring a broker from the audit archive (streams/restore.py): what it refuses before touching the
broker, where it resumes the consumers, and (on the real embedded broker) that every record lands at
its offset and a log that refers to offsets the archive lacks is padded with placeholders."""
import asyncio
import json

import pytest

from connectors.archive import MANIFEST, POSITIONS, ArchiveWriter
from connectors.broker import EmbeddedBroker
from schemas.serde import encode
from streams import topics
from streams.restore import RestoreRefused, _resume_at, newest, restore
from streams.routing import Source, route
from streams.topics import ensure_topics
from tests.integration.harness import read_all
from tests.support import person

T0 = 1_730_419_200_000


def _archive(root, with_positions: int | None = 4):
    w = ArchiveWriter(root)
    for offset in range(2):
        w.add(topics.REQUESTS, 0, offset, T0 + offset, b"P1", [], b'{"infno":"person"}')
    # an op the router wrote for settle.requests[0]@5: the archiver had not reached offsets 2..5
    op = next(r for r in route(encode(person("530102195001010011")), None, {}, Source(topics.REQUESTS, 0, 5, T0), 4,
                               1 << 20) if r.topic == topics.LEDGER_OPS)
    w.add(topics.LEDGER_OPS, 0, 0, T0 + 9, op.key, list(op.headers), op.value)
    if with_positions:
        w.write_positions({(topics.REQUESTS, 0): 9, (topics.LEDGER_OPS, 0): 0, (topics.RESULTS, 0): 3},
                          with_positions)
    w.close()
    return root


def _restore(root, bootstrap="127.0.0.1:9", partitions=4):
    return asyncio.run(restore(bootstrap, root, {}, "yibao-test", partitions))


def test_a_tampered_archive_is_refused_before_anything_is_written(tmp_path):
    root = _archive(tmp_path / "a")
    lines = (root / MANIFEST).read_text().splitlines()
    (root / MANIFEST).write_text("\n".join(reversed(lines)) + "\n")
    with pytest.raises(RestoreRefused, match="(?s)fails verification, nothing restored.*out of chain"):
        _restore(root)


def test_another_partition_count_is_refused(tmp_path):
    with pytest.raises(RestoreRefused, match="written with 4 partitions per topic, the service has 8"):
        _restore(_archive(tmp_path / "a"), partitions=8)


def test_an_archive_being_written_is_refused(tmp_path):
    root = _archive(tmp_path / "a")
    writer = ArchiveWriter(root)
    try:
        with pytest.raises(RestoreRefused, match="another archiver: is a service from before still running"):
            _restore(root)
    finally:
        writer.close()


def test_the_newest_embedded_life_is_restored_never_a_clusters_archive(tmp_path):
    for name in ("embedded-20261201T080000Z", "embedded-20261202T080000Z", "cluster"):
        _archive(tmp_path / name)
    (tmp_path / "embedded-20261203T080000Z").mkdir()  # no manifest: nothing was archived there
    assert newest(tmp_path).name == "embedded-20261202T080000Z"
    assert newest(tmp_path / "nothing-here") is None


def test_consumers_resume_at_the_lower_of_their_commit_and_the_archives_end():
    positions = {"committed": [{"topic": topics.REQUESTS, "partition": 0, "offset": 9},
                               {"topic": topics.LEDGER_OPS, "partition": 1, "offset": 3},
                               {"topic": topics.RESULTS, "partition": 0, "offset": 7}]}
    ends = {(topics.REQUESTS, 0): 6, (topics.LEDGER_OPS, 1): 10}
    assert _resume_at(positions, ends) == {(topics.REQUESTS, 0): 6, (topics.LEDGER_OPS, 1): 3}
    assert _resume_at(None, ends) == {}


def test_every_record_lands_at_its_offset_and_offsets_the_log_refers_to_are_padded(tmp_path):
    root = _archive(tmp_path / "a")
    (tmp_path / "broker").mkdir()
    with EmbeddedBroker(log_dir=tmp_path / "broker") as broker:
        asyncio.run(ensure_topics(broker.bootstrap, 4))
        done = _restore(root, broker.bootstrap)
        assert (done.records, done.placeholders) == (3, 4)
        assert done.positions == {(topics.REQUESTS, 0): 2, (topics.LEDGER_OPS, 0): 0}
        requests = [r for r in read_all(broker.bootstrap, topics.REQUESTS, idle=1.0) if r.partition == 0]
        assert [r.offset for r in requests] == list(range(6))
        assert [topics.is_filler(r.headers) for r in requests] == [False, False, True, True, True, True]
        assert requests[0].timestamp == T0 and requests[0].key == b"P1"
        [op] = read_all(broker.bootstrap, topics.LEDGER_OPS, idle=0.5)
        assert (op.partition, op.offset, op.timestamp) == (0, 0, T0 + 9)
        with pytest.raises(RestoreRefused, match="landed at .*restore only into an empty broker"):
            _restore(root, broker.bootstrap)  # a second time: the topics are no longer empty
    assert json.loads((root / POSITIONS).read_text())["partitions"] == 4


def test_foreign_bytes_the_agents_dead_lettered_do_not_stop_a_restore(tmp_path):
    """Anyone who can write to ledger.ops or clearing.entries can put garbage there (the agents
    dead-letter it); a restore copies it back like any record and goes on."""
    root = _archive(tmp_path / "a")
    w = ArchiveWriter(root)
    w.add(topics.LEDGER_OPS, 1, 0, T0 + 20, None, [], b"\x00not an op")
    w.add(topics.CLEARING, 2, 0, T0 + 21, None, [("yb-record", b"ledger_op")], b"{not avro")
    w.close()
    (tmp_path / "broker").mkdir()
    with EmbeddedBroker(log_dir=tmp_path / "broker") as broker:
        asyncio.run(ensure_topics(broker.bootstrap, 4))
        done = _restore(root, broker.bootstrap)
        assert (done.records, done.placeholders) == (5, 4)
