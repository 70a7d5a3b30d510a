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
Exit codes: 0 stopped as asked, 3 the embedded broker died, 4 an agent failed, 5 a stop forced at
its deadline, 2 a policy error at start-up.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import faust

from connectors.broker import EmbeddedBroker
from connectors.client import send_reference_data
from processors.policy import load_policies

from . import agents, metrics
from .health import BROKER_DIED, Health
from .app import create_app
from .logs import logging_config
from .settings import Settings
from .topics import ensure_topics


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
        if settings.archive_dir is not None:
            # The embedded broker starts empty each time, its offsets from 0: each of its lives gets its own
            # archive folder. A configured cluster keeps its log, so its archive goes on in one folder.
            life = dt.datetime.now(dt.timezone.utc).strftime("embedded-%Y%m%dT%H%M%SZ") if broker else "cluster"
            folder = settings.archive_dir / life
            archiver = subprocess.Popen([sys.executable, "-m", "streams.cli", "archive", "run", "--dir", str(folder),
                                         "--bootstrap", bootstrap, "--parent", str(os.getpid())])
            print(f"  archive: {folder} (yibao archive verify {settings.archive_dir})", flush=True)
        if population is not None:
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
