"""vgtui benchmarks: run `python -m benchmarks --help`. Not part of the test suite."""
