"""Shared test configuration: hypothesis profiles.

``ci`` is deterministic (derandomize=True) and modest; ``dev`` is random and
larger. Select with the environment variable HYPOTHESIS_PROFILE (default ci,
so a plain ``pytest`` run is reproducible).
"""
import os

# Plots in tests and tutorials never need a screen.
os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
