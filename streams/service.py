"""Run the streaming service: embedded broker (unless one is configured), topics, demo data, the worker.

Start order: broker -> topics -> policies -> Faust worker. Stop order (SIGTERM/SIGINT): the worker
finishes its in-flight batches and commits, then the embedded broker stops last. If the embedded
broker dies, every topic is gone with it (it keeps data in memory), so the worker stops loudly with
exit code 3 instead of carrying on with state that is no longer durable.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import faust

from connectors.broker import EmbeddedBroker
from connectors.client import send_reference_data
from processors.policy import load_policies

from . import agents, metrics
from .health import AGENT_FAILED, BROKER_DIED, Health
from .app import create_app
from .logs import logging_config
from .settings import Settings
from .topics import ensure_topics


def serve(settings: Settings, population: Path | None = None, loglevel: str = "warning") -> int:
    book = load_policies(settings.policies)  # a PolicyError stops start-up before anything runs
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    broker = None
    bootstrap = settings.bootstrap
    if bootstrap is None:
        broker = EmbeddedBroker().start()
        bootstrap = broker.bootstrap
    try:
        loop.run_until_complete(ensure_topics(bootstrap, settings.partitions, **settings.kafka_kwargs()))
        if population is not None:
            sent = loop.run_until_complete(send_reference_data(bootstrap, population, settings))
            print(f"demo population: {sent} reference events from {population}", flush=True)
        app = create_app(settings, bootstrap)
        health = Health()
        agents.install(app, settings, book, bootstrap, health)
        metrics.serve(settings.metrics_port, settings.metrics_host)

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
        worker = faust.Worker(app, loop=loop, loglevel=loglevel, override_logging=True,
                              logging_config=logging_config(loglevel, settings.log_format))
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
        if broker is not None:
            broker.stop()
