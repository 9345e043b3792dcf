"""Benchmarks: each ``bench_*.py`` module prints its figures and a same-run baseline ratio."""
