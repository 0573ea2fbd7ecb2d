# Two entry points for a fresh machine:
#   make demo   bootstrap, then serve the demo on http://127.0.0.1:8000 (in-process hub only)
#   make test   bootstrap everything, then run every C++ and Python test
SHELL := /bin/bash
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test bootstrap bootstrap-full test-cpp test-sanitizers test-python bench format lint clean

demo: bootstrap
	$(PY) -m sessionstream serve examples.demo.app:app --host $(HOST) --port $(PORT)

test: bootstrap-full test-cpp test-sanitizers test-python

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

test-python:
	$(PY) -m pytest

bench:
	bash bench/run

format:
	clang-format -i cpp/include/sessionstream/*.hpp cpp/include/sessionstream/edge/*.hpp cpp/src/edge/* cpp/src/redis/* cpp/src/kafka/* cpp/src/*.cpp cpp/src/*.hpp cpp/bindings/*.cpp cpp/bindings/*.hpp cpp/tests/*.cpp bench/micro/*.cpp
	$(PY) -m ruff format python tests examples bench

lint:
	$(PY) -m ruff check python tests examples bench
	$(PY) -m ruff format --check python tests examples bench

clean:
	rm -rf build dist .pytest_cache
