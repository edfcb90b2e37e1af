"""A stand-in for Kaggle's API on 127.0.0.1, for the kaggle CLI/SDK in integration tests.

The SDK sends every call as a JSON POST to ``<endpoint>/api/v1/<service>/<Method>`` when
``KAGGLE_API_ENVIRONMENT=LOCALHOST``; in-process, its endpoint table is pointed at this
server's port. Every request is recorded (method, path, headers, JSON body) for assertions.

It answers the calls the workspace makes the way Kaggle does: a competition download is a
redirect to a blob; ``GetDatasetStatus`` is a 404 for a dataset it does not hold, so the client
creates it; an upload is ``StartBlobUpload`` (a token and an upload URL) then a raw PUT of the
bytes to that URL; ``CreateDataset``/``CreateDatasetVersion`` take the tokens; ``SaveKernel``
numbers versions and lists dataset sources it does not hold; ``CreateCodeSubmission`` needs a
kernel version it has seen.
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
    uploads: dict[str, dict] = field(default_factory=dict)  # token -> {"name", "data"}
    datasets: dict[str, list[list[str]]] = field(default_factory=dict)  # ref -> token lists
    kernels: dict[str, int] = field(default_factory=dict)  # ref -> latest version

    def calls(self, method: str) -> list[Recorded]:
        """The recorded JSON calls to one API method, e.g. ``SaveKernel``."""
        return [r for r in self.requests if r.path.endswith(f"/{method}")]

    def dataset_files(self, ref: str, version: int = -1) -> dict[str, bytes]:
        """The files uploaded for one version of a dataset, by name."""
        tokens = self.datasets[ref][version]
        return {self.uploads[t]["name"]: self.uploads[t]["data"] for t in tokens}

    def _answer(self, method: str, body: dict) -> tuple[int, dict]:
        if method == "GetDatasetStatus":
            ref = f"{body['ownerSlug']}/{body['datasetSlug']}"
            if ref not in self.datasets:
                return 404, {"code": 404, "message": f"Dataset {ref} not found"}
            return 200, {"status": "READY"}
        if method == "StartBlobUpload":
            token = f"blob-{len(self.uploads)}"
            self.uploads[token] = {"name": body["name"], "data": None}
            return 200, {"token": token, "createUrl": f"{self.url}/upload/{token}"}
        if method in ("CreateDataset", "CreateDatasetVersion"):
            slug = body.get("slug") or body.get("datasetSlug")
            ref = f"{body['ownerSlug']}/{slug}"
            files = body["files"] if method == "CreateDataset" else body["body"]["files"]
            if (method == "CreateDataset") == (ref in self.datasets):
                return 200, {"error": f"{method}: unexpected state of {ref}"}
            if any(self.uploads.get(f["token"], {}).get("data") is None for f in files):
                return 200, {"error": "a file token was never uploaded"}
            self.datasets.setdefault(ref, []).append([f["token"] for f in files])
            return 200, {"ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}"}
        if method == "SaveKernel":
            ref = body["slug"]
            missing = [d for d in body.get("datasetDataSources", []) if d not in self.datasets]
            if missing:
                return 200, {"invalidDatasetSources": missing}
            self.kernels[ref] = self.kernels.get(ref, 0) + 1
            return 200, {
                "ref": f"/code/{ref}",
                "url": f"https://www.kaggle.com/code/{ref}",
                "versionNumber": self.kernels[ref],
            }
        if method == "CreateCodeSubmission":
            ref = f"{body['kernelOwner']}/{body['kernelSlug']}"
            version = body.get("kernelVersion", self.kernels.get(ref))
            if ref not in self.kernels or version > self.kernels[ref]:
                return 404, {"code": 404, "message": f"Kernel {ref} version {version} not found"}
            return 200, {"message": "Submission successful", "ref": 1}
        return 404, {"code": 404, "message": f"no fake for {method}"}

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
                return self._json(*fake._answer(self.path.rsplit("/", 1)[-1], body))

            def do_PUT(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._record(None)
                token = self.path.removeprefix("/upload/")
                if token not in fake.uploads:
                    return self._json(404, {"code": 404, "message": "unknown upload"})
                fake.uploads[token]["data"] = data
                return self._json(200, {})

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
