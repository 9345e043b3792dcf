"""The OncoCDS knowledge base: versioned sources, a reproducible build, a cached loader."""

from inference.genomics.kb.build import build_knowledge_base, write_knowledge_base
from inference.genomics.kb.store import (
    DEFAULT_KB_PATH,
    KnowledgeBase,
    load_knowledge_base,
    read_knowledge_base,
)

__all__ = [
    "DEFAULT_KB_PATH",
    "KnowledgeBase",
    "build_knowledge_base",
    "load_knowledge_base",
    "read_knowledge_base",
    "write_knowledge_base",
]
