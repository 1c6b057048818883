"""Loads the real-Postgres test harness for every test in the repository."""

pytest_plugins = ["tests.harness"]
