"""Service configuration from the environment, read once at start-up. Nothing here is policy."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from processors.ledger import ANSWER_DAYS
from processors.policy import POLICY_ROOT


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not an integer") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class Settings:
    """`KAFKA_BOOTSTRAP_SERVERS` unset means: start the embedded broker on a free loopback port."""

    bootstrap: str | None = field(default_factory=lambda: os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None)
    app_id: str = field(default_factory=lambda: os.environ.get("YIBAO_APP_ID", "yibao"))
    partitions: int = field(default_factory=lambda: _int("YIBAO_PARTITIONS", 4))
    batch_size: int = field(default_factory=lambda: _int("YIBAO_BATCH_SIZE", 1000))
    batch_ms: int = field(default_factory=lambda: _int("YIBAO_BATCH_MS", 20))
    max_message_bytes: int = field(default_factory=lambda: _int("YIBAO_MAX_MESSAGE_BYTES", 1_000_000))
    metrics_port: int = field(default_factory=lambda: _int("YIBAO_METRICS_PORT", 0))
    metrics_host: str = field(default_factory=lambda: os.environ.get("YIBAO_METRICS_HOST", "127.0.0.1"))
    # Seconds a requested stop (SIGTERM/SIGINT) may take before the process ends anyway (exit code 5);
    # 0 waits for ever. Only an unreachable broker makes a stop this slow.
    stop_timeout: float = field(default_factory=lambda: _float("YIBAO_STOP_TIMEOUT", 5.0))
    log_format: str = field(default_factory=lambda: os.environ.get("YIBAO_LOG_FORMAT", "json"))
    policies: Path = field(default_factory=lambda: Path(os.environ.get("YIBAO_POLICIES", str(POLICY_ROOT))))
    # Where `yibao run` archives every record (streams/archiver.py, its own process); unset: no archive.
    archive_dir: Path | None = field(default_factory=lambda: Path(os.environ["YIBAO_ARCHIVE_DIR"])
                                     if os.environ.get("YIBAO_ARCHIVE_DIR") else None)
    # Days of event time a person's answers keep their results (processors/ledger.py); 0 keeps them all.
    answer_days: int = field(default_factory=lambda: _int("YIBAO_ANSWER_DAYS", ANSWER_DAYS))
    # With the embedded broker (empty at each start) and an archive: restore the newest archive into it before
    # serving, and go on archiving there (streams/restore.py); 0 starts empty, in a new archive folder.
    restore: bool = field(default_factory=lambda: os.environ.get("YIBAO_RESTORE", "1") not in ("0", "false", "no"))
    # Where the worker keeps snapshots of its partition states (streams/snapshots.py), and how many records
    # of a partition's log between two; unset: every start and rebalance replays the log from offset 0.
    snapshot_dir: Path | None = field(default_factory=lambda: Path(os.environ["YIBAO_SNAPSHOT_DIR"])
                                      if os.environ.get("YIBAO_SNAPSHOT_DIR") else None)
    snapshot_every: int = field(default_factory=lambda: _int("YIBAO_SNAPSHOT_EVERY", 10_000))
    security_protocol: str = field(default_factory=lambda: os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"))
    sasl_mechanism: str | None = field(default_factory=lambda: os.environ.get("KAFKA_SASL_MECHANISM") or None)
    sasl_username: str | None = field(default_factory=lambda: os.environ.get("KAFKA_SASL_USERNAME") or None)
    sasl_password: str | None = field(default_factory=lambda: os.environ.get("KAFKA_SASL_PASSWORD") or None)
    ssl_cafile: str | None = field(default_factory=lambda: os.environ.get("KAFKA_SSL_CAFILE") or None)

    def __post_init__(self) -> None:
        for name, value, least in (("YIBAO_ANSWER_DAYS", self.answer_days, 0),
                                   ("YIBAO_SNAPSHOT_EVERY", self.snapshot_every, 1)):
            if value < least:
                raise SystemExit(f"{name}={value}: give {least} or more")

    def kafka_kwargs(self) -> dict:
        """aiokafka client arguments for the configured security (SASL/TLS passed through)."""
        kwargs: dict = {"security_protocol": self.security_protocol}
        if self.ssl_cafile or self.security_protocol in ("SSL", "SASL_SSL"):
            import ssl
            kwargs["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.sasl_mechanism:
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.sasl_password)
        return kwargs
