"""Test helpers shared by the test suite and the benchmarks (like ``numpy.testing``).

- `videogen` — small video files with frames a test can recognise, written with PyAV.
- `hostile` — the hostile-input corpus (truncated, mislabelled, oversized, malformed files) and
  its mutator.

NumPy and PyAV only, torch-free; ``import vidsort`` never imports it.
"""
