"""A JupyterLab server for tests, and a client that runs a notebook's cells the way the browser
does: a session (and its kernel) made through the REST API for the notebook's path, so the
kernel starts in the notebook's folder, then ``execute_request`` messages over the kernel's
websocket channel, collecting what comes back on iopub."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT

SETTINGS = ROOT / ".jupyter" / "lab" / "user-settings"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """``jupyter lab`` as ``make lab`` starts it (its settings), serving ``root``."""

    root: Path
    log: Path
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> LabServer:
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(SETTINGS)}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={self.port}",
            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}", "--ServerApp.port_retries=0",
        ]  # fmt: skip
        if os.geteuid() == 0:  # CI runs as root
            cmd.append("--allow-root")
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.log.read_text()[-2000:]}")
            try:
                self.get("/api/status")
                return self
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def request(self, method: str, path: str, body: dict | None = None) -> dict | list:
        req = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as res:
            text = res.read().decode()
        return json.loads(text) if text else {}

    def get(self, path: str) -> dict | list:
        return self.request("GET", path)


@dataclass
class CellResult:
    source: str
    outputs: list[dict]
    status: str  # the execute_reply's: ok | error

    @property
    def errors(self) -> list[dict]:
        return [o for o in self.outputs if o["msg_type"] == "error"]


def _message(msg_type: str, content: dict, session: str, channel: str) -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session,
            "username": "test", "version": "5.3", "date": "",
        },
        "parent_header": {}, "metadata": {}, "content": content, "channel": channel,
    }  # fmt: skip


async def _run_cells(server: LabServer, kernel_id: str, cells: list[str], timeout: float):
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws_url = server.url.replace("http", "ws") + f"/api/kernels/{kernel_id}/channels"
    request = HTTPRequest(ws_url, headers={"Authorization": f"token {server.token}"})
    conn = await websocket_connect(request)
    session = uuid.uuid4().hex
    results = []
    try:
        for code in cells:
            msg = _message(
                "execute_request",
                {"code": code, "silent": False, "store_history": True,
                 "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
                session, "shell",
            )  # fmt: skip
            await conn.write_message(json.dumps(msg))
            outputs, status, idle = [], None, False
            while status is None or not idle:
                raw = await asyncio.wait_for(conn.read_message(), timeout)
                if raw is None:
                    raise RuntimeError("the kernel's websocket closed")
                reply = json.loads(raw)
                if reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                    continue
                kind = reply["msg_type"]
                if reply["channel"] == "shell" and kind == "execute_reply":
                    status = reply["content"]["status"]
                elif kind == "status":
                    idle = reply["content"]["execution_state"] == "idle"
                elif kind in ("stream", "error", "execute_result", "display_data"):
                    outputs.append({"msg_type": kind, **reply["content"]})
            results.append(CellResult(code, outputs, status))
            if status != "ok":
                break
    finally:
        conn.close()
    return results


def run_notebook_in_lab(
    server: LabServer, path: str, kernel: str = "dfdc", timeout: float = 300
) -> list[CellResult]:
    """Open ``path`` (relative to the server's root) as Lab does and run its code cells in
    order over the websocket, stopping at the first that fails; the kernel is shut down."""
    import jupytext

    nb = jupytext.read(server.root / path)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    session = server.request(
        "POST", "/api/sessions",
        {"path": path, "name": Path(path).name, "type": "notebook", "kernel": {"name": kernel}},
    )  # fmt: skip
    try:
        return asyncio.run(_run_cells(server, session["kernel"]["id"], cells, timeout))
    finally:
        server.request("DELETE", f"/api/sessions/{session['id']}")


def output_text(results: list[CellResult]) -> str:
    parts = []
    for r in results:
        for o in r.outputs:
            if o["msg_type"] == "stream":
                parts.append(o["text"])
            elif o["msg_type"] == "error":
                parts.append(f"{o['ename']}: {o['evalue']}")
            else:
                parts.append(o.get("data", {}).get("text/plain", ""))
    return "".join(parts)
