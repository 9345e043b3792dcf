"""Domain core: genomic domain model, knowledge base and interpretation, imaging predictors.

No web framework, no database, no environment reading: callers pass configuration in.
"""
