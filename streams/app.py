"""The Faust application object and its settings; topics and agents are installed by `streams.agents`."""
from __future__ import annotations

import os
import tempfile

import faust

from . import transport
from .settings import Settings
from .topics import REJECTED_MAX_BYTES


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
        broker=f"{transport.SCHEME}://{bootstrap}",
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
