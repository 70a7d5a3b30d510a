# The two commands a newcomer needs: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The service on the embedded broker (or KAFKA_BOOTSTRAP_SERVERS), with the demo population loaded,
# every record archived under archive/ (yibao archive verify archive) and restored from there at the
# next start, the partition states snapshotted under snapshots/.
YIBAO_METRICS_PORT ?= 9464
YIBAO_ARCHIVE_DIR ?= archive
YIBAO_SNAPSHOT_DIR ?= snapshots
run: $(STAMP)
	YIBAO_METRICS_PORT=$(YIBAO_METRICS_PORT) YIBAO_ARCHIVE_DIR=$(YIBAO_ARCHIVE_DIR) \
	YIBAO_SNAPSHOT_DIR=$(YIBAO_SNAPSHOT_DIR) $(BIN)/yibao run --population examples/demo.jsonl

# The same demo offline: no broker, one result per event, with derivations.
demo: $(STAMP)
	$(BIN)/yibao settle examples/demo.jsonl --explain -o demo-results.jsonl
	@echo "results written to demo-results.jsonl"

test: $(STAMP)
	$(BIN)/python -m pytest

# quix-streams, the peer the streaming bench compares with, pins an older pydantic: it gets its own venv.
QUIX := .venv-quix
$(QUIX)/.installed:
	$(PYTHON) -m venv $(QUIX)
	$(QUIX)/bin/pip install --quiet 'quixstreams>=3.28'
	touch $@

bench: $(STAMP) $(QUIX)/.installed
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/restart.py --sizes 10000 100000      # 1,000,000 too: about 15 minutes
	$(BIN)/python bench/memory.py --events 200000            # --events 1000000: about 20 minutes
	YIBAO_BENCH_QUIX_PYTHON=$(QUIX)/bin/python $(BIN)/python bench/streaming.py

clean:
	rm -rf $(VENV) $(QUIX) demo-results.jsonl .pytest_cache .hypothesis
