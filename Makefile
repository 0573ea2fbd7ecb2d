# Two entry points for a fresh machine:
#   make demo   bootstrap, then serve the demo on http://127.0.0.1:8000 (in-process hub only)
#   make test   bootstrap everything, then run every C++ and Python test
SHELL := /bin/bash
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test bootstrap bootstrap-full test-cpp test-sanitizers test-python bench format lint clean \
	wheel sdist test-wheel fuzz fuzz-smoke

demo: bootstrap
	$(PY) -m sessionstream serve examples.demo.app:app --host $(HOST) --port $(PORT)

test: bootstrap-full test-cpp test-sanitizers fuzz-smoke test-python

bootstrap:
	bash scripts/bootstrap.sh core

bootstrap-full:
	bash scripts/bootstrap.sh full

test-cpp:
	cmake --preset default
	cmake --build --preset default
	bash scripts/redis.sh with ctest --preset default

test-sanitizers:
	cmake --preset asan-ubsan
	cmake --build --preset asan-ubsan
	bash scripts/redis.sh with ctest --preset asan-ubsan
	cmake --preset tsan
	cmake --build --preset tsan
	bash scripts/redis.sh with ctest --preset tsan

# libFuzzer targets (clang): each runs FUZZ_SECONDS over a copy of cpp/fuzz/corpus.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

fuzz-smoke:
	FUZZ_SECONDS=10 bash scripts/fuzz.sh

test-python:
	$(PY) -m pytest

bench:
	bash bench/run

# wheelhouse/sessionstream-*-manylinux_*.whl with librdkafka, hiredis and their
# dependencies inside (dist/ holds the wheel before auditwheel repairs it).
wheel:
	bash scripts/wheel.sh wheel

sdist:
	bash scripts/wheel.sh sdist

# Installs the wheel and the sdist into fresh venvs (also part of test-python).
test-wheel: wheel
	$(PY) -m pytest -m packaging tests/packaging

# Every C++ file under cpp/: the folders (common, core, sessions, sources/kafka,
# sources/redis, edge) one and two levels down, the bindings, tests and fuzzers.
CPP_SOURCES = $(wildcard $(foreach d,cpp/include/sessionstream cpp/src cpp/tests,\
	$(d)/*.hpp $(d)/*/*.[ch]pp $(d)/*/*/*.[ch]pp) cpp/bindings/*.[ch]pp cpp/fuzz/*.cpp)

format:
	clang-format -i $(CPP_SOURCES) bench/micro/*.cpp
	$(PY) -m ruff format python tests examples bench

lint:
	$(PY) -m ruff check python tests examples bench
	$(PY) -m ruff format --check python tests examples bench

clean:
	rm -rf build dist wheelhouse .pytest_cache
