"""Benchmarks: run as modules (`python -m bench.bench_ledger`); not part of the tests."""
