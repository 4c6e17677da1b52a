# One entry point for people and CI.  `make demo` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ckit-installed

.PHONY: setup demo test bench fixtures clean

# setuptools >= 77 reads the licence as an SPDX expression; the wheel test builds with the venv's own.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools>=77'
	$(PY) -m pip install -q -e '.[tf,test]'
	touch $(STAMP)

setup: $(STAMP)

# The main job on the embedded default: dump every kind of artifact, convert, then prove it.
demo: setup
	$(PY) -m converters.demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_inspect.py
	$(PY) benchmarks/bench_convert.py
	$(PY) benchmarks/bench_stats.py

fixtures: setup
	$(PY) fixtures/make_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache
