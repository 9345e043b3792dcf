"""Plain-language explanations of stored findings from a local LLM (issue #16).

``service`` requests (a pending row and an ``llm.explain`` job, in the caller's transaction) and
runs explanations (model → schema → grounding, or the template); ``repository`` holds the
queries; ``endpoints`` the staff statistics route; ``fhir`` the AI Transparency resources.
"""
