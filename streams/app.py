"""The Faust application object and its settings; topics and agents are installed by `streams.agents`.

Reconnecting: aiokafka (0.14) has no reconnect backoff of its own; its fetcher, group coordinator,
producer sender and metadata waits retry after `retry_backoff_ms`, and each retry tries to connect
again. Its default, 100 ms, made a worker whose broker was gone try about 37 connections and write
about 75 error lines a second. Faust passes no `retry_backoff_ms`, so the transport below sets it on
the clients it makes: with RETRY_BACKOFF_MS = 1000 (the ceiling of Kafka's own reconnect backoff) a
worker waits for its broker at a few attempts a second. The cost when the broker is up: a retriable
error (a rebalance in progress, a leader moving) is retried after 1 s instead of 0.1 s.
"""
from __future__ import annotations

import os
import tempfile

import faust
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as driver

from . import transport
from .settings import Settings
from .topics import REJECTED_MAX_BYTES

RETRY_BACKOFF_MS = 1000
SCHEME = f"{transport.SCHEME}-backoff"


class ConsumerThread(transport.ConsumerThread):
    def _create_worker_consumer(self, kafka_transport):
        consumer = super()._create_worker_consumer(kafka_transport)
        consumer._retry_backoff_ms = RETRY_BACKOFF_MS  # read when the consumer starts its fetcher and coordinator
        consumer._client._retry_backoff = RETRY_BACKOFF_MS / 1000  # the client's metadata waits
        return consumer


class Consumer(transport.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Producer(driver.Producer):
    def _settings_default(self):
        return {**super()._settings_default(), "retry_backoff_ms": RETRY_BACKOFF_MS}


class Transport(transport.Transport):
    """`streams.transport.Transport` whose aiokafka clients retry after RETRY_BACKOFF_MS."""
    Consumer = Consumer
    Producer = Producer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def create_app(settings: Settings, bootstrap: str) -> faust.App:
    kafka = settings.kafka_kwargs()
    credentials = None
    if settings.sasl_mechanism:
        credentials = faust.SASLCredentials(username=settings.sasl_username, password=settings.sasl_password,
                                            mechanism=settings.sasl_mechanism, ssl_context=kafka.get("ssl_context"))
    elif "ssl_context" in kafka:
        credentials = faust.SSLCredentials(kafka["ssl_context"])
    return faust.App(
        settings.app_id,
        broker=f"{SCHEME}://{bootstrap}",
        broker_credentials=credentials,
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=False,  # streams.topics creates and checks every topic
        consumer_auto_offset_reset="earliest",
        # BROKER.md: with the 60 s defaults each group join took 30 s on the embedded broker.
        broker_session_timeout=10,
        broker_rebalance_timeout=10,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        web_enabled=False,
        # Faust wants a data directory even with no tables: keep it out of the working tree.
        datadir=os.path.join(tempfile.gettempdir(), f"{settings.app_id}-faust-data"),
        producer_acks=-1,
        producer_max_request_size=REJECTED_MAX_BYTES + 65536,
    )
