"""Test peers that run real servers (FHIR) for the test suite."""
