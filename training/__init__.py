"""Offline model training, evaluation and bundle export. Never imported by the service."""
