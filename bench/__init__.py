"""Benchmarks of launch itself: the probe's HTTP engine, the embedding, the matrix.

Run with ``python -m bench`` (``--quick`` for a short run). The machine is
small and shared, so every figure is a ratio of two things measured in the
same run, alternating A and B, with medians over repetitions. Nothing here is
part of the unit tests.
"""
