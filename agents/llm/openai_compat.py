"""A chat model behind an OpenAI-compatible HTTP server (llama-server, llama_cpp.server, Ollama,
vLLM), for people who outgrow one machine. Standard library only: no SDK to install.

Structured output is asked for the OpenAI way (`response_format: json_schema`); a server that
refuses that (llama_cpp.server accepts only `json_object` with a `schema`) is asked again the
other way, and the choice is remembered.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Literal

from agents.llm.port import (
    Cancelled,
    ModelError,
    ModelInfo,
    ModelTimeout,
    Request,
    approx_tokens,
    trim_to_fit,
)
from storage.errors import ModelUnavailable

SchemaStyle = Literal["json_schema", "json_object"]


class OpenAICompatibleModel:
    def __init__(
        self,
        base_url: str,
        model: str = "default",
        api_key: str | None = None,
        n_ctx: int = 4096,
        timeout_s: float = 120.0,
        schema_style: SchemaStyle | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        if not self._base.endswith("/v1"):
            self._base += "/v1"
        self._model = model
        self._api_key = api_key
        self._timeout = timeout_s
        self._style: SchemaStyle | None = schema_style
        self._style_lock = threading.Lock()
        # The schema goes out as `response_format`, which these servers turn into a grammar;
        # the server's hardware is not visible from here, so no claim about GPU offload.
        self._info = ModelInfo(
            name=model,
            backend="openai-http",
            n_ctx=n_ctx,
            supports_schema=True,
            details={"base_url": self._base},
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def stream(self, request: Request, cancel: threading.Event | None = None) -> Iterator[str]:
        if cancel is not None and cancel.is_set():
            raise Cancelled("generation cancelled before it started")
        return self._stream(request, cancel)

    def list_models(self) -> list[str]:
        """The ids the server offers (a cheap health check for doctor)."""
        req = urllib.request.Request(self._base + "/models", headers=self._headers())
        data = self._open_json(req)
        return [str(m.get("id", "")) for m in data.get("data", [])]

    def close(self) -> None:
        """Nothing held between requests."""

    # ----- internals -----------------------------------------------------------------------

    def _stream(self, request: Request, cancel: threading.Event | None) -> Iterator[str]:
        styles: list[SchemaStyle | None] = [None]
        if request.schema is not None:
            styles = [self._style] if self._style else ["json_schema", "json_object"]
        for n, style in enumerate(styles):
            try:
                response = urllib.request.urlopen(
                    self._build(request, style), timeout=self._timeout
                )
            except urllib.error.HTTPError as exc:
                body = _body(exc)
                # A server that does not take this response_format says so with a 4xx (or, for
                # llama_cpp.server, a 500 naming the field): ask again the other way.
                refused = 400 <= exc.code < 500 or "response_format" in body
                if refused and n + 1 < len(styles):
                    continue
                raise ModelError(f"the model server said {exc.code}: {body}") from exc
            except TimeoutError as exc:
                raise ModelTimeout(f"the model server at {self._base} did not answer") from exc
            except urllib.error.URLError as exc:
                raise ModelUnavailable(
                    f"cannot reach the model server at {self._base}: {exc.reason}"
                ) from exc
            if style is not None:
                with self._style_lock:
                    self._style = style
            with response:
                yield from self._events(response, cancel)
            return

    def _build(self, request: Request, style: SchemaStyle | None) -> urllib.request.Request:
        max_tokens = min(request.max_tokens, max(self._info.n_ctx // 2, 16))
        msgs = trim_to_fit(request.messages, self._info.n_ctx - max_tokens - 32, approx_tokens)
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in msgs],
            "max_tokens": max_tokens,
            "temperature": request.temperature,
            "stream": True,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.schema is not None and style == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.schema, "strict": True},
            }
        elif request.schema is not None:
            body["response_format"] = {"type": "json_object", "schema": request.schema}
        return urllib.request.Request(
            self._base + "/chat/completions",
            data=json.dumps(body).encode("utf-8"),
            headers={**self._headers(), "Accept": "text/event-stream"},
            method="POST",
        )

    def _events(self, response: Any, cancel: threading.Event | None) -> Iterator[str]:
        """Server-sent events: `data: {json}` lines, ended by `data: [DONE]`."""
        try:
            for raw in response:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("generation cancelled")
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except json.JSONDecodeError as exc:
                    raise ModelError(f"the model server sent a malformed event: {data!r}") from exc
                if "error" in event:
                    raise ModelError(f"the model server failed: {event['error']}")
                choices = event.get("choices") or [{}]
                text = (choices[0].get("delta") or {}).get("content")
                if text:
                    yield str(text)
        except TimeoutError as exc:
            raise ModelTimeout(f"the model server at {self._base} stopped answering") from exc

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _open_json(self, req: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                data = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise ModelError(f"the model server said {exc.code}: {_body(exc)}") from exc
        except urllib.error.URLError as exc:
            raise ModelUnavailable(
                f"cannot reach the model server at {self._base}: {exc.reason}"
            ) from exc
        return data if isinstance(data, dict) else {}


def _body(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read().decode("utf-8", errors="replace")
    except OSError:
        return exc.reason or ""
    return text[:600]
