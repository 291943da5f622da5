"""Benchmarks (scripts run from the repo root: `.venv/bin/python bench/<name>.py`)."""
