"""A fake OpenAI-compatible server, run as its own process: `python -m tests.helpers.fake_openai
PORT`. It answers GET /v1/models and POST /v1/chat/completions (streamed as server-sent events,
as llama-server does) with a judge's verdict: {"label": "CORRECT"} when the prompt's "Generated
answer:" line contains its "Gold answer:" (case aside), else {"label": "WRONG"}. Every request
body is appended to the file named by FAKE_OPENAI_LOG, if set, so a test can read what was sent.
"""

from __future__ import annotations

import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_LINE = r"^{}:\s*(.*)$"


def verdict(prompt: str) -> str:
    gold = re.search(_LINE.format("Gold answer"), prompt, re.M)
    answer = re.search(_LINE.format("Generated answer"), prompt, re.M)
    right = bool(gold and answer and gold[1].strip().lower() in answer[1].lower())
    return json.dumps({"label": "CORRECT" if right else "WRONG"})


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass

    def _json(self, data: object) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._json({"object": "list", "data": [{"id": "fake-judge", "object": "model"}]})
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if log := os.environ.get("FAKE_OPENAI_LOG"):
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(body) + "\n")
        prompt = "\n".join(str(m["content"]) for m in body["messages"])
        text = verdict(prompt)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
