"""The browser page: the exported ensemble on a static folder that scores a local video with no
server-side work and no network (``dfdc export --web DIR``; ``dfdc web DIR`` serves it).

The page's code lives in the repository's ``web/`` folder (``index.html``, ``src/*.js``, a
``package.json`` and the ``package-lock.json`` that pins ``onnxruntime-web`` and ``mp4box``).
Building copies, from installed files only: the page, the runtime's script and wasm files and
mp4box.js out of ``web/node_modules`` (installed by ``npm ci`` from the lock file when missing
or stale), and the export stage's folder (ONNX graphs, MTCNN's networks, ``export.json``)
into ``model/``. Nothing is fetched when the page runs.

The page samples, detects, tracks and crops as the faces stage does and scores as the ONNX
engine does (docs/web.md has the differences and the measured agreement).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

from dfdc.core.errors import UserError
from dfdc.core.io import write_json
from dfdc.core.provenance import describe_training_data, sample_only
from dfdc.inference.onnx_engine import MANIFEST, read_manifest

__all__ = [
    "VENDOR",
    "browser_scores",
    "build_web",
    "is_loopback",
    "make_server",
    "npm_install",
    "serve",
    "web_source",
]

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

# Files of the installed npm packages the page loads (module folder -> files).
VENDOR = {
    "mp4box/dist": ["mp4box.all.min.js"],
    "onnxruntime-web/dist": [
        "ort.webgpu.min.js",
        "ort-wasm-simd-threaded.jsep.mjs",
        "ort-wasm-simd-threaded.jsep.wasm",
        "ort-wasm-simd-threaded.asyncify.mjs",
        "ort-wasm-simd-threaded.asyncify.wasm",
    ],
}
STAMP = ".dfdc-lock-sha256"  # in node_modules: which lock file it was installed from


def web_source() -> Path:
    """The repository's ``web/`` folder (beside the pyproject.toml of this editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "web" / "index.html").exists():
            return parent / "web"
    raise UserError(f"{here}: no web/ folder beside the project (the page ships with the repo)")


def npm_install(source: Path) -> Path:
    """``npm ci`` from the lock file unless ``node_modules`` was installed from this very lock
    file; returns ``node_modules``."""
    lock = source / "package-lock.json"
    modules = source / "node_modules"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = modules / STAMP
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise UserError(f"{source}: npm is not installed (Node.js 20 with npm builds the page)")
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    done = subprocess.run(cmd, cwd=source, capture_output=True, text=True)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise UserError(f"{lock}: npm ci failed: {tail[0]}")
    stamp.write_text(digest + "\n")
    return modules


def build_web(export_dir: str | Path, out_dir: str | Path, source: Path | None = None) -> Path:
    """Write the static page into ``out_dir`` from the export in ``export_dir``; returns the
    folder. The export is checked first (a missing or foreign one is a one-line error)."""
    export_dir, out = Path(export_dir), Path(out_dir)
    manifest = read_manifest(export_dir)
    if not manifest.get("detector", {}).get("mtcnn"):
        raise UserError(
            f"{export_dir / MANIFEST}: no face detector in the export (dvc repro export)"
        )
    source = source or web_source()
    modules = npm_install(source)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "vendor").mkdir(parents=True)
    shutil.copy2(source / "index.html", tmp / "index.html")
    shutil.copytree(source / "src", tmp / "src")
    for folder, files in VENDOR.items():
        for name in files:
            f = modules / folder / name
            if not f.is_file():
                raise UserError(
                    f"{f}: missing from the installed npm packages (npm ci in {source})"
                )
            shutil.copy2(f, tmp / "vendor" / name)
    model = tmp / "model"
    model.mkdir()
    files = {m["backbone"] for m in manifest["members"]}
    files |= {m["head"] for m in manifest["members"] if m.get("head")}
    files |= set(manifest["detector"]["mtcnn"].values())
    for name in sorted(files):
        shutil.copy2(export_dir / name, model / name)
        (model / name).chmod(0o644)
    shutil.copy2(export_dir / MANIFEST, model / MANIFEST)
    lock = json.loads((source / "package-lock.json").read_text())
    trained = [m.get("trained_on") or {} for m in manifest["members"]]
    write_json(
        {
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "export": str(export_dir),
            # What the page shows beside its verdict (the line dfdc predict prints).
            "trained_on": describe_training_data(trained),
            "sample_models": sample_only(trained),
            "packages": {
                k.removeprefix("node_modules/"): v.get("version")
                for k, v in lock.get("packages", {}).items()
                if k.count("node_modules/") == 1
            },
        },
        tmp / "build.json",
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers that let the page use wasm threads
    (cross-origin isolation) and serve ``.mjs``/``.wasm`` with their types. Files only: a
    folder without an ``index.html`` is not listed, and nothing whose real path (symbolic
    links followed) lies outside the served folder is served."""

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
    }  # fmt: skip

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        pass

    def list_directory(self, path: str) -> None:
        self.send_error(404, "Not found")
        return None

    def send_head(self):  # the base class returns a file object or None
        root = os.path.realpath(self.directory)
        real = os.path.realpath(self.translate_path(self.path))
        if real != root and not real.startswith(root + os.sep):
            self.send_error(404, "Not found")  # a link out of the folder: as if absent
            return None
        return super().send_head()


def make_server(folder: str | Path, port: int = 8000, host: str = "127.0.0.1"):
    """A threading HTTP server of ``folder`` (port 0: any free port)."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise UserError(f"{folder}: no index.html (build it: dfdc export --web {folder})")
    handler = functools.partial(_Handler, directory=str(folder))
    return http.server.ThreadingHTTPServer((host, port), handler)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: whatever it resolves to, it is not the loopback literal
        return False


def serve(folder: str | Path, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serve the page until interrupted; a warning line when ``host`` is not the loopback
    address (the page and the models are then open to every machine that can reach this one)."""
    server = make_server(folder, port, host)
    if not is_loopback(host):
        print(
            f"dfdc web: warning: listening on {host}, beyond this machine: anyone who can "
            "reach it can load the page and its models (--host 127.0.0.1 keeps it local)",
            file=sys.stderr,
            flush=True,
        )
    print(f"dfdc web: http://{host}:{server.server_port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def chromium(window: str = "1200,1800"):
    """Debian's headless Chromium through its ChromeDriver (selenium; no browser download),
    with the console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={window}"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def browser_scores(
    site: str | Path, videos: list[Path], screenshot: Path | None = None, timeout: float = 1800
) -> dict:
    """Serve ``site`` on the loopback address, give ``videos`` to the page's file input in
    headless Chromium and wait for its results: ``{"results": [...], "errors": [console
    errors], "label_px": [...]}``, each result as the page holds it (prob, status, frames,
    tracks, boxes, frameProbs, frameScores, memberScores, seconds), and the on-screen pixel
    size of each frame canvas's labels. Used by the tests and ``benchmarks/web.py``."""
    import threading

    from selenium.webdriver.common.by import By

    server = make_server(site, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = chromium()
    try:
        driver.get(f"http://127.0.0.1:{server.server_port}/")
        t0 = time.monotonic()
        while driver.execute_script("return document.body.dataset.ready") != "1":
            if time.monotonic() - t0 > 60:
                raise UserError(f"{site}: the page did not load: "
                                f"{driver.find_element(By.ID, 'status').text}")  # fmt: skip
            time.sleep(0.2)
        paths = "\n".join(str(Path(v).resolve()) for v in videos)
        driver.find_element(By.ID, "file").send_keys(paths)
        results = None
        while results is None or len(results) < len(videos):
            if time.monotonic() - t0 > timeout:
                raise UserError(f"{site}: no result after {timeout:.0f} s: "
                                f"{driver.find_element(By.ID, 'status').text}")  # fmt: skip
            time.sleep(0.5)
            results = driver.execute_script("return window.dfdcResults || null")
        if screenshot is not None:
            driver.save_screenshot(str(screenshot))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        # The frame canvases' label size as shown: font px x shown width / drawn width.
        label_px = driver.execute_script(
            "return [...document.querySelectorAll('#frames canvas')].map((c) =>"
            " parseFloat(c.getContext('2d').font) * c.getBoundingClientRect().width / c.width)"
        )
        return {"results": results, "errors": errors, "label_px": label_px}
    finally:
        driver.quit()
        server.shutdown()
