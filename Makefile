# mspd-edge: the two commands README opens with.
#   make demo   install into .venv, protect samples/ with the embedded models -> out/demo/
#   make test   install into .venv (with test extras) and run the test suite, less the tests
#               marked slow; `make test-slow` runs those (CI runs both: .ci/run)
#   PYTEST_ARGS  more pytest arguments for either, e.g. PYTEST_ARGS=tests/test_noise.py
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned (torch==2.13.0) in pyproject's [torch] extra: an unpinned torch pulls CUDA packages.
EXTRAS ?= all
PYTEST_ARGS ?=

.PHONY: demo test test-slow install clean

$(BIN)/mspd-edge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

install: $(BIN)/mspd-edge

demo: install
	$(BIN)/mspd-edge protect samples -o out/demo --overwrite --report out/demo/report.json
	@echo "demo: protected images and report.json are in out/demo/"

test: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) out
