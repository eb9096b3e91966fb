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
