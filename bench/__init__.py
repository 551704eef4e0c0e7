"""Benchmarks, each run as a module from the project's folder: ``python -m bench.solve``, ``bench.suite``,
``bench.throughput``, ``bench.scaling``, ``bench.memory`` and ``bench.launchers``."""
