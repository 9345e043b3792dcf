"""A local language model served by Ollama, through the official ``ollama`` Python client."""

from integrations.ollama.client import (
    Attempt,
    OllamaConfig,
    OllamaStructuredClient,
    StructuredResult,
)

__all__ = ["Attempt", "OllamaConfig", "OllamaStructuredClient", "StructuredResult"]
