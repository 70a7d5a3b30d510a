"""Run the streaming service: embedded broker (unless one is configured), topics, demo data, the worker.

Start order: broker -> topics -> policies -> Faust worker. Stop order (SIGTERM/SIGINT): the worker
finishes its in-flight batches and commits, then the embedded broker stops last. If the embedded
broker dies, every topic is gone with it (it keeps data in memory), so the worker stops loudly with
exit code 3 instead of carrying on with state that is no longer durable.

A broker that is unreachable (one the worker does not own) is waited for: aiokafka retries with a
backoff (`streams.transport`), the repeated log lines are rate-limited (`streams.logs`), the metrics endpoint
keeps answering with `yibao_broker_up 0` (`streams.metrics`). A stop requested meanwhile cannot
finish gracefully (Faust waits for the broker on the way out), so SIGTERM/SIGINT arm a deadline,
YIBAO_STOP_TIMEOUT (5 s), after which the process ends with exit code 5 (`streams.health`).
With YIBAO_ARCHIVE_DIR set (`make run` sets `archive/`), an archiver process (streams/archiver.py)
appends every record to the audit archive; it is stopped, and seals its files, before the broker.
An embedded broker starts empty: when the archive folder holds an earlier life, it is first restored
into the broker (streams/restore.py) and archiving goes on in the same folder, so a stop and start
loses nothing (YIBAO_RESTORE=0 starts empty, in a new folder).
Exit codes: 0 stopped as asked, 3 the embedded broker died, 4 an agent failed, 5 a stop forced at
its deadline, 2 a policy error at start-up.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import faust

from connectors.broker import EmbeddedBroker
from connectors.client import send_reference_data
from processors.policy import load_policies

from . import agents, metrics
from .health import BROKER_DIED, Health
from .app import create_app
from .logs import logging_config
from .restore import RestoreRefused, newest, restore
from .settings import Settings
from .topics import ensure_topics


def _restore(loop: asyncio.AbstractEventLoop, bootstrap: str, folder: Path, settings: Settings) -> bool:
    """Restore `folder` into the empty embedded broker; True when it held anything."""
    print(f"restoring {folder} into the embedded broker ...", flush=True)
    started = shown = time.monotonic()

    def progress(written: int) -> None:
        nonlocal shown
        if time.monotonic() - shown >= 5:
            shown = time.monotonic()
            print(f"  {written} records written back ({written / (shown - started):,.0f}/s)", flush=True)

    try:
        done = loop.run_until_complete(restore(bootstrap, folder, settings.kafka_kwargs(), settings.app_id,
                                               settings.partitions, progress))
    except RestoreRefused as e:
        raise SystemExit(f"cannot restore: {e}\nmove the archive away, or start empty with YIBAO_RESTORE=0") from None
    if done.recovered:
        print(f"  {done.recovered} records of segments a crash left open sealed first", flush=True)
    print(f"  restored {done.records} records ({done.placeholders} placeholders) in "
          f"{time.monotonic() - started:.1f}s; consumers resume at {len(done.positions)} committed offsets", flush=True)
    return done.records > 0


class Worker(faust.Worker):
    """Faust's worker, whose stop on SIGTERM/SIGINT has a deadline (`Health.stop_deadline`)."""

    def __init__(self, *args, health: Health, stop_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._health = health
        self._stop_timeout = stop_timeout

    def _on_sigterm(self) -> None:
        self._health.stop_deadline(self._stop_timeout)
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._health.stop_deadline(self._stop_timeout)
        super()._on_sigint()


def serve(settings: Settings, population: Path | None = None, loglevel: str = "warning") -> int:
    book = load_policies(settings.policies)  # a PolicyError stops start-up before anything runs
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    broker = archiver = None
    bootstrap = settings.bootstrap
    if bootstrap is None:
        broker = EmbeddedBroker().start()
        bootstrap = broker.bootstrap
    try:
        loop.run_until_complete(ensure_topics(bootstrap, settings.partitions, **settings.kafka_kwargs()))
        restored = False
        if settings.archive_dir is not None:
            # A configured cluster keeps its log, so its archive goes on in one folder. The embedded broker
            # starts empty: the newest archive is restored into it and goes on, or a new one begins.
            folder = settings.archive_dir / "cluster"
            if broker is not None:
                folder = newest(settings.archive_dir) if settings.restore else None
                if folder is not None:
                    restored = _restore(loop, bootstrap, folder, settings)
                else:
                    folder = settings.archive_dir / dt.datetime.now(dt.timezone.utc).strftime("embedded-%Y%m%dT%H%M%SZ")
            # In a session of its own, so a Ctrl-C of `make run` does not stop it before the worker: it is
            # stopped after the worker (below), or stops itself when this process is gone (--parent).
            archiver = subprocess.Popen([sys.executable, "-m", "streams.cli", "archive", "run", "--dir", str(folder),
                                         "--bootstrap", bootstrap, "--parent", str(os.getpid())],
                                        start_new_session=True)
            print(f"  archive: {folder} (yibao archive verify {settings.archive_dir})", flush=True)
        if population is not None and restored:
            print("demo population: already in the restored log, not sent again", flush=True)
        elif population is not None:
            sent = loop.run_until_complete(send_reference_data(bootstrap, population, settings))
            print(f"demo population: {sent} reference events from {population}", flush=True)
        app = create_app(settings, bootstrap)
        health = Health()
        agents.install(app, settings, book, bootstrap, health)
        metrics.serve(settings.metrics_port, settings.metrics_host)
        metrics.watch_broker(bootstrap)

        if broker is not None:
            health.on_abort(broker.stop)
            broker.on_death(lambda: health.abort(
                f"the embedded broker exited and its topics are gone with it (see {broker.log_path})", BROKER_DIED))

        print(f"yibao worker: broker {bootstrap} ({'embedded' if broker else 'configured'}), "
              f"{settings.partitions} partitions, policies {', '.join(p.id for p in book.policies)}", flush=True)
        print(f"  send:  yibao send examples/demo.jsonl --bootstrap {bootstrap}", flush=True)
        print(f"  watch: yibao tail results --bootstrap {bootstrap}", flush=True)
        if settings.metrics_port:
            print(f"  metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics", flush=True)
        worker = Worker(app, loop=loop, loglevel=loglevel, override_logging=True,
                        logging_config=logging_config(loglevel, settings.log_format),
                        health=health, stop_timeout=settings.stop_timeout)
        # Faust's terminal spinner sets the root logger to DEBUG, so every aiokafka send builds a
        # debug record only to throw it away (7% of the worker's time in the streaming bench).
        worker.spinner = None
        try:
            worker.execute_from_commandline()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        else:
            code = 0
        return code
    finally:
        if archiver is not None:  # sealed before the broker goes: it reads to the last record it can
            archiver.terminate()
            try:
                archiver.wait(30)
            except subprocess.TimeoutExpired:
                archiver.kill()
        if broker is not None:
            broker.stop()
