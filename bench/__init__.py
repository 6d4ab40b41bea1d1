"""Benchmark harness (issue 7): ``python -m bench.run --quick|--full [--sections 1,2,...]``.

Not part of the product: nothing here is imported by the apps, and the bench-only URLconf and
settings (:mod:`bench.settings`, :mod:`bench.urls`) exist only so the harness can mount a bare
baseline endpoint next to the real API.
"""
