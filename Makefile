# The README names these targets; `make test` and `make run` work on a fresh machine.
PYTHON ?= python3
STORE ?= $(or $(TAGGER_MODEL_STORE),./models)
MODEL ?= $(or $(TAGGER_MODEL_NAME),fashion)
STAMP := .install.stamp

.PHONY: system-deps bench-deps install test lint run train train-quick bench bench-quick clean

# Everything: serving (the base install), training (TensorFlow) and the test tools.
$(STAMP): pyproject.toml
	$(PYTHON) -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

install: $(STAMP) system-deps

# Debian packages the tests and the default data set need (skipped when present or not root);
# hey drives the pinned-version throughput test, chromium and its driver the page's tests.
system-deps:
	@test -d /usr/share/datasets/fashion-mnist && command -v prometheus >/dev/null && command -v hey >/dev/null && \
		command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -q && \
			apt-get install -y -q dataset-fashion-mnist prometheus hey chromium chromium-driver; } || \
		echo "note: install the Debian packages dataset-fashion-mnist, prometheus, hey, chromium and chromium-driver (needs root)"

test: $(STAMP) system-deps
	$(PYTHON) -m pytest

lint: $(STAMP)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# Serve every model in the store (TAGGER_MODELS=*), or only MODEL when it or TAGGER_MODEL_NAME
# is given; on an empty store, first train and publish the quick model.
ONE_MODEL := $(if $(filter-out file,$(origin MODEL))$(TAGGER_MODEL_NAME),TAGGER_MODEL_NAME=$(MODEL))
run: $(STAMP) system-deps
	@$(PYTHON) -m model_store --store $(STORE) versions $(MODEL) >/dev/null 2>&1 || \
		$(PYTHON) -m training train --profile quick --store $(STORE) --model $(MODEL)
	TAGGER_MODEL_STORE=$(STORE) $(ONE_MODEL) $(PYTHON) -m app

train: $(STAMP)
	$(PYTHON) -m training train --store $(STORE) --model $(MODEL)

train-quick: $(STAMP)
	$(PYTHON) -m training train --profile quick --store $(STORE) --model $(MODEL)

# hey (a Go load generator) drives the overload scenario (without it the Python client is the
# limit) and the legitimate load of the hostile-client scenarios (skipped without it).
bench-deps:
	@command -v hey >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q hey; } || \
		echo "note: install the Debian package hey for the overload and hostile scenarios"

bench: $(STAMP) system-deps bench-deps
	$(PYTHON) -m benchmarks

bench-quick: $(STAMP) system-deps bench-deps
	$(PYTHON) -m benchmarks --quick

clean:
	rm -rf $(STAMP) .pytest_cache .ruff_cache *.egg-info
