"""Histopathology imaging analyses: API, jobs, CDS service support (issue #15)."""
