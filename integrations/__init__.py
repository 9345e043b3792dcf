"""The outside world's formats and protocols, mapped to and from ``inference``'s domain types."""
