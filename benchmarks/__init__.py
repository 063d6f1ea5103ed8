"""Benchmarks and the straightforward reference implementations they compare against."""
