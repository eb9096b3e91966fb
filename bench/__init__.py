"""Benchmarks: each ``python -m bench.<name>`` writes ``bench/results/<name>.json`` and ``.md``.

Performance is measured here and never asserted in tests (the machines are shared and noisy).
"""
