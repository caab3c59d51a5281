"""A real HTTP server on a free local port that records what alert webhooks post to it.
Each path answers as told: `answers["/flaky"] = [500, 500, 200]` (the last repeats), and
`delays["/slow"] = 3.0` seconds before answering."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        self.answers: dict[str, list[int]] = {}
        self.delays: dict[str, float] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                with receiver._lock:
                    receiver.received.append((self.path, body))
                    codes = receiver.answers.get(self.path, [200])
                    code = codes.pop(0) if len(codes) > 1 else codes[0]
                time.sleep(receiver.delays.get(self.path, 0))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str = "/hook") -> list[dict]:
        with self._lock:
            return [body for p, body in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
