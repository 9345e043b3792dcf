"""Stored analyses: an interpretation, its FHIR report Bundle, and how to read them back."""
