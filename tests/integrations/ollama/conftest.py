"""Ollama-API test servers (``tests/support/ollama_server.py``: a stand-in at the network edge,
no Ollama binary is installable here, serving the real Gemma 3 270M GGUF with llama-cpp-python)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.ollama_server import OllamaTestServer


@pytest.fixture
def crafted_server() -> Iterator[OllamaTestServer]:
    """A server that answers only scripted replies (no model loaded): for the content tests."""
    with OllamaTestServer.start(model=False) as server:
        yield server


@pytest.fixture(scope="session")
def model_server() -> Iterator[OllamaTestServer]:
    """The server with the real model loaded (once per session)."""
    with OllamaTestServer.start(model=True) as server:
        yield server
