"""Errors of the inference layer (domain core: knowledge base, tumour types, interpretation).

::

    InferenceError                  base of every error raised here on purpose
    ├── KnowledgeBaseError          the knowledge base could not be built or loaded
    │   ├── KnowledgeBaseSourceError    a source file is missing, altered (sha256) or malformed
    │   └── KnowledgeBaseFormatError    the compiled file is unreadable or of another format
    ├── UnknownTumourTypeError      a tumour type not in the curated table; carries close matches
    ├── InputTooLargeError          more alterations or genotypes than one interpretation takes
    └── ModelBundleError            an imaging model bundle is missing files, altered (sha256)
                                    or its metadata breaks the contract (inference/imaging/bundle)

Messages name files, codes and ids, never patient data. ``cds_service`` maps these to its own
errors (CLI: one line and exit code 2; HTTP: OperationOutcome).
"""

from __future__ import annotations


class InferenceError(Exception):
    """Base of the inference layer's errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class KnowledgeBaseError(InferenceError):
    """The knowledge base could not be built or loaded."""


class KnowledgeBaseSourceError(KnowledgeBaseError):
    """A knowledge-base source file is missing, altered or malformed."""


class KnowledgeBaseFormatError(KnowledgeBaseError):
    """The compiled knowledge-base file is unreadable or of an unknown format."""


class UnknownTumourTypeError(InferenceError):
    """The tumour type is not in the curated table; ``suggestions`` lists close matches."""

    def __init__(self, text: str, suggestions: tuple[str, ...]) -> None:
        hint = f"; close matches: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown tumour type {text!r}{hint}")
        self.text = text
        self.suggestions = suggestions


class InputTooLargeError(InferenceError):
    """More alterations or genotypes than one call to ``interpret`` accepts."""


class ModelBundleError(InferenceError):
    """An imaging model bundle is incomplete, altered or does not meet the metadata contract."""
