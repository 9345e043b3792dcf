"""CDS Hooks 2.0 protocol layer: discovery, service calls, prefetch, cards, feedback."""
