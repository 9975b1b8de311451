"""Benchmarks: pytest-benchmark comparisons and the end-to-end load benchmark (`python -m benches.load`)."""
