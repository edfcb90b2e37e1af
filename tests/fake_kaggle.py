"""A stand-in for Kaggle's API on 127.0.0.1, for the kaggle CLI/SDK in integration tests.

The SDK sends every call as a JSON POST to ``<endpoint>/api/v1/<service>/<Method>`` when
``KAGGLE_API_ENVIRONMENT=LOCALHOST``; in-process, its endpoint table is pointed at this
server's port. Every request is recorded (method, path, headers, JSON body) for assertions.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeKaggle:
    files: dict[str, bytes] = field(default_factory=dict)  # served at /blobs/<name>
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeKaggle:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _record(self, body: Any) -> None:
                fake.requests.append(Recorded(self.command, self.path, dict(self.headers), body))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                self._record(body)
                if self.path.endswith("/competitions.CompetitionApiService/DownloadDataFiles"):
                    name = f"{body['competitionName']}.zip"
                    if name not in fake.files:
                        return self._json(404, {"code": 404, "message": "Competition not found"})
                    self.send_response(302)
                    self.send_header("Location", f"/blobs/{name}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return self._json(404, {"code": 404, "message": f"no fake for {self.path}"})

            def do_GET(self) -> None:
                self._record(None)
                name = self.path.split("?")[0].removeprefix("/blobs/")
                data = fake.files.get(name)
                if data is None:
                    return self._json(404, {"code": 404, "message": "not found"})
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return None

            def _json(self, code: int, obj: dict) -> None:
                payload = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
