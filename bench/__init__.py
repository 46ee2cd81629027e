"""Benchmarks of issue 7: `make bench` (full) and `make bench-quick`; never part of `make test`.

Modules: load (wrk or Python load generator), nodes (the measured hierarchy), resolve,
trace, batch (throughput, memory and disk), scale (10 thousand vs N stored), report.
Every verdict is a ratio against a baseline measured in the same run.
"""
