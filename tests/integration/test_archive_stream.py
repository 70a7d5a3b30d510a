"""The archiver beside the worker on the real broker (YIBAO_ARCHIVE_DIR): every record of every topic
archived once, in offset order, sealed when the worker is stopped (SIGTERM) and when it is killed
(kill -9: the archiver sees its parent gone), continued by the next worker, intact by `verify`, and
replayed by `yibao replay` (the archive, and the topics themselves) with no difference."""
import json
import signal
import time
from pathlib import Path

from typer.testing import CliRunner

from connectors.archive import read_manifest, records, verify
from streams.cli import app
from tests.integration.harness import read_all, send
from tests.support import hospitals, line, person, settlement

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.jsonl"


def _sealed(folder: Path, timeout: float = 30) -> None:
    """Wait until the archiver has sealed everything it opened (no unsealed segment left)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (folder / "manifest.jsonl").exists() and not list(folder.glob("*/*/*.open")):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{folder}: segments left unsealed")


def _archived(folder: Path, topic: str) -> list[dict]:
    return [r for e in read_manifest(folder) if e["topic"] == topic for r in records(folder, e)]


def test_every_record_is_archived_once_across_a_kill_9_and_a_stop(broker, spawn, tmp_path):
    root = tmp_path / "archive"
    env = {"YIBAO_ARCHIVE_DIR": str(root)}
    first = spawn(broker.bootstrap, extra_env=env)
    first.wait_started()
    demo = [line for line in DEMO.read_bytes().splitlines() if line.strip()]
    send(broker.bootstrap, demo, tmp_path)
    time.sleep(2)  # the archiver reads what the worker wrote
    first.signal(signal.SIGKILL)
    first.wait(30)
    folder = root / "cluster"  # a configured broker keeps its log: one archive goes on across workers
    _sealed(folder)

    second = spawn(broker.bootstrap, extra_env=env)
    second.wait_started()
    later = [person("ARC001", balc="100")] + [settlement([line("66")], psn_no="ARC001", msgid=f"ARC-{i}",
                                                         day="2024-12-02") for i in range(20)]
    send(broker.bootstrap, hospitals() + later, tmp_path)
    time.sleep(2)
    assert second.stop() == 0, second.log()
    _sealed(folder)

    problems, head = verify(folder)
    assert problems == [] and len(head) == 64
    for topic in ("settle.requests", "insured.commands", "ledger.ops", "settle.results", "clearing.entries"):
        archived = _archived(folder, topic)
        on_topic = read_all(broker.bootstrap, topic, idle=1.0)
        assert sorted((r["partition"], r["offset"]) for r in archived) == \
               sorted((r.partition, r.offset) for r in on_topic), topic  # each record once, none missing
        by_place = {(r.partition, r.offset): r.value for r in on_topic}
        assert all(by_place[r["partition"], r["offset"]] == r["value"] for r in archived), topic
    answered = {json.loads(r["value"])["inf_refmsgid"] for r in _archived(folder, "settle.results")}
    assert {f"ARC-{i}" for i in range(20)} <= answered
    shown = CliRunner().invoke(app, ["archive", "verify", str(root)])
    assert shown.exit_code == 0 and "intact" in shown.output, shown.output
    # the audit replay, of the archive and of the topics themselves: the same records, recomputed
    for source in ([str(root)], ["--bootstrap", broker.bootstrap, "--idle", "1.5"]):
        replayed = CliRunner().invoke(app, ["replay", *source])
        assert replayed.exit_code == 0 and "identical: every recomputed" in replayed.output, replayed.output
