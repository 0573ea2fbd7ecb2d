"""Benchmark runner: starts each server pinned to core 0, drives ``loadgen`` pinned to
core 1 through the scenarios, and writes JSON, Markdown and PNG results."""
