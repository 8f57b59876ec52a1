"""Benchmarks: each prints its numbers beside a peer measured in the same run (see README.md)."""
