"""Benchmark harness: the raw model's limit, the served throughput and latency, overload, soak.

Run as `python -m benchmarks [--quick] [--soak]`; results land in benchmarks/results/.
"""
