"""Shared test settings. Hypothesis profiles: the default keeps the normal suite short;
``HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``) runs 25,000 inputs per property."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: The throwaway PostgreSQL (fixtures pg_url, db_url: store tests run on both backends).
pytest_plugins = ["tests.pg"]

settings.register_profile("default", max_examples=300, deadline=None)
settings.register_profile(
    "fuzz", max_examples=25_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
