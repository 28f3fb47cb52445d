# csilink: the two commands a new user needs are `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# Extras: bs (torch), train (onnx, matplotlib), datagen (sionna), dev (pytest, ruff, grpcio-tools).
EXTRAS  ?= bs,train,datagen,dev
STAMP   := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
comma   := ,
SCENARIO ?= scenarios/default.yaml
PYTEST_ARGS ?=

.PHONY: help venv proto demo test lint fmt results sample-data bundles compose-test clean

help:
	@echo "make demo          set up, start UE / channel emulator / BS and run $(SCENARIO)"
	@echo "make test          set up and run the whole test suite"
	@echo "make lint          ruff"
	@echo "make results       regenerate docs/RESULTS.md from the shipped bundles"
	@echo "make sample-data   regenerate the committed sample dataset"
	@echo "make bundles       retrain and export the shipped bundles (long: see docs/models.md)"
	@echo "make compose-test  build the images and run docker compose (needs a Docker engine)"

# torch==2.13.0 is pinned in pyproject.toml: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

# LLVM 19 for Sionna RT's ray tracing (a no-op once installed).
venv: $(STAMP)
	bash scripts/install_llvm.sh

# gRPC code is generated from proto/ by grpcio-tools, never edited by hand.
proto: venv
	$(BIN)/python scripts/gen_proto.py

demo: proto
	$(BIN)/csilink up --run $(SCENARIO)

# pytest exit 5 (no tests collected) is a failure here: a suite that runs nothing proves nothing.
test: proto
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

fmt: venv
	$(BIN)/ruff check --fix .

results: proto
	$(BIN)/csilink report

sample-data: venv
	$(BIN)/csilink dataset generate --profile cdl-c-fdd --n-train 400 --n-val 100 --n-test 100 \
		--sf-cap 16 --compress --seed 0 -o data/sample/cdl-c-fdd-sample.h5
	$(BIN)/csilink dataset generate-rt --profile rt-street-sample -o data/sample/rt-street-sample.h5

bundles: proto
	bash scripts/train_shipped.sh

compose-test: proto
	CSILINK_COMPOSE_TEST=1 $(BIN)/python -m pytest -q -m compose tests/test_compose.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache csilink/v1 runs/tmp
