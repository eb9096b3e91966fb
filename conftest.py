"""Shared pytest configuration: hypothesis profiles and tool checks."""
import os

from hypothesis import HealthCheck, settings

# `ci` keeps `make test` under 30 minutes on 2 cores; `thorough` is for nightly or local runs.
settings.register_profile(
    "ci", max_examples=8, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    # Cross-backend tests (hwtests/) take their backends from here; see hwtests/crossbackend.py.
    parser.addoption("--backends", default="llvm,csim,rtl",
                     help="comma-separated backends for the cross-backend tests: llvm, csim, rtl (open tools) and "
                          "sw_emu, hw_emu, hw (Vitis/XRT; skipped with the reason where absent)")
