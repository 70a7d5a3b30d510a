# syntax=docker/dockerfile:1
#
# yibao: the settlement service image.
#
#   docker build -t yibao .
#   docker run --rm --init yibao               # `yibao run` on the embedded broker (self-contained demo)
#   docker run --rm --init -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 yibao   # on a real cluster
#   docker run --rm -v "$PWD:/data:ro" yibao settle /data/events.jsonl   # offline settlement
#
# The full stack (Kafka, topics, service) is docker-compose.yml.
#
# Two stages: `build` installs the package into a virtualenv (with a compiler at hand), the runtime
# stage copies only that virtualenv onto a clean base and runs it as an unprivileged user.
# Both stages must use the same base image: the virtualenv links to its Python.
# For production, pin the base by digest (python:3.11-slim@sha256:...) and rebuild for its updates.
ARG PYTHON_IMAGE=python:3.11-slim

############################################################################### build
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every dependency has a manylinux wheel for linux/amd64, but faust-streaming publishes none for
# linux/arm64, where pip compiles its C extensions: the compiler is here for that. (Not pinned:
# it is the toolchain of the base image's Debian release, and it stays out of the final image.)
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/yibao
ENV PATH=/opt/yibao/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change,
# not on every source edit. (Runtime dependencies only: never the [test] extra.)
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# The package itself (non-editable; the policy YAML and Avro schemas go in as package data).
COPY schemas/ schemas/
COPY processors/ processors/
COPY streams/ streams/
COPY connectors/ connectors/
RUN pip install . \
 && pip check

############################################################################### runtime
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="yibao" \
      org.opencontainers.image.description="Real-time medical-insurance settlement over Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"

# YIBAO_METRICS_PORT: Prometheus metrics (0 turns them off). YIBAO_METRICS_HOST: the address they
# bind; 0.0.0.0 so that they can be scraped from outside the container (the default is loopback).
# Every other setting (KAFKA_BOOTSTRAP_SERVERS, YIBAO_PARTITIONS, KAFKA_SASL_*, ...) is given at
# run time: see streams/settings.py and docker-compose.yml. Without KAFKA_BOOTSTRAP_SERVERS,
# `yibao run` starts its embedded, in-memory broker: fine for a demo, never for production.
ENV PATH=/opt/yibao/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    YIBAO_METRICS_PORT=9464 \
    YIBAO_METRICS_HOST=0.0.0.0

# Fixed numeric ids, so that volume ownership and runAsUser-style policies can name them.
RUN groupadd --system --gid 10001 yibao \
 && useradd --system --uid 10001 --gid yibao --home-dir /var/lib/yibao --create-home \
            --shell /usr/sbin/nologin yibao

COPY --from=build /opt/yibao /opt/yibao
# The demo events, for `yibao send /usr/share/yibao/examples/demo.jsonl` (the compose `demo` profile).
COPY examples/ /usr/share/yibao/examples/

# Fail the build, not the first start, if the installed package cannot load its policies
# (package data missing) or cannot import the streaming service.
RUN yibao policies > /dev/null \
 && python -c "import streams.service"

# The working directory must be writable: Faust keeps its data directory (yibao-data/, named after
# YIBAO_APP_ID) under it. Nothing in it needs to survive a restart: the ledger is rebuilt from the
# ledger.ops topic, so no volume is needed here.
WORKDIR /var/lib/yibao
USER 10001:10001

EXPOSE 9464

# Ready = start-up got through: the policies loaded, every topic exists with YIBAO_PARTITIONS
# partitions, and the metrics server (started just before the worker) answers. It is not a deep
# liveness probe: the worker stops the process itself on a fatal error (exit 3 when the broker is
# gone, 4 when an agent fails) and the restart policy brings it back. Only the stdlib is used. With
# YIBAO_METRICS_PORT=0 there is nothing to ask and the check passes; commands other than `run`
# (send, settle, tail) serve no metrics: disable the check for them (compose: healthcheck.disable).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; p = os.environ.get('YIBAO_METRICS_PORT') or '0'; p == '0' or urllib.request.urlopen('http://127.0.0.1:%s/metrics' % p, timeout=4).read(1)"]

ENTRYPOINT ["yibao"]
CMD ["run"]
