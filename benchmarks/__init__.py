"""Benchmark of the program's cost against the Pulumi SDK floor (`python -m benchmarks`)."""
