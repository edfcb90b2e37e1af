"""Fault matrix, values (web): ``dfdc web`` serves files only (no folder listing, nothing
outside its folder through a symbolic link, no path traversal) and warns when it listens beyond
this machine; the built page says at its top, beside the verdict, what the models were trained
on, with the sample-model warning ``dfdc predict`` gives."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import pytest

from dfdc.inference import web
from dfdc.inference.web import CHROMEDRIVER, CHROMIUM, build_web, is_loopback, make_server
from tests.web.test_page import needs_browser, web_export  # noqa: F401 (a fixture)


@pytest.fixture
def served(tmp_path):
    """A served folder with a page, a sub-folder without an index, a link to a file outside
    and a link to a file inside; yields (get, root)."""
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<p>page</p>")
    (root / "sub" / "data.txt").write_text("inside")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (root / "out.txt").symlink_to(secret)
    (root / "outdir").symlink_to(tmp_path, target_is_directory=True)
    (root / "in.txt").symlink_to(root / "sub" / "data.txt")
    server = make_server(root, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def get(path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, res.read()

    try:
        yield get, root
    finally:
        server.shutdown()
        server.server_close()


def test_web_serves_files_only(served):
    get, _ = served
    assert get("/") == (200, b"<p>page</p>")
    assert get("/sub/data.txt") == (200, b"inside")
    assert get("/in.txt") == (200, b"inside")  # a link that stays inside: served
    status, body = get("/sub/")
    assert status == 404 and b"data.txt" not in body  # no listing
    for path in ("/out.txt", "/outdir/secret.txt", "/outdir/", "/../secret.txt",
                 "/%2e%2e/secret.txt", "/sub/../../secret.txt"):  # fmt: skip
        status, body = get(path)
        assert status == 404 and b"outside" not in body, path


def test_web_warns_when_it_listens_beyond_this_machine(monkeypatch, tmp_path, capsys):
    class _Server:
        server_port = 8123

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    monkeypatch.setattr(web, "make_server", lambda *a, **k: _Server())
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host)
        web.serve(tmp_path, 8123, host)
        assert "warning" not in capsys.readouterr().err
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        assert not is_loopback(host)
        web.serve(tmp_path, 8123, host)
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"dfdc web: warning: listening on {host}, beyond this machine")
        assert "\n" not in err


@pytest.fixture(scope="module")
def built(web_export) -> Path:  # noqa: F811 (the imported fixture)
    out = web_export / "faults_site"
    build_web(web_export / "export", out)
    return out


def test_the_build_records_what_the_models_were_trained_on(built):
    info = json.loads((built / "build.json").read_text())
    assert info["sample_models"] is True
    assert info["trained_on"].startswith("trained on: the generated sample")


@needs_browser
@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="no chromium")
def test_the_page_says_what_the_models_know_beside_its_verdict(built):
    from selenium.webdriver.common.by import By

    server = make_server(built, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = web.chromium()
    try:
        driver.get(f"http://127.0.0.1:{server.server_port}/")
        t0 = time.monotonic()
        while driver.execute_script("return document.body.dataset.ready") != "1":
            assert time.monotonic() - t0 < 60, driver.find_element(By.ID, "status").text
            time.sleep(0.2)
        trained = driver.find_element(By.ID, "trained")
        assert trained.text.startswith("Sample models. Models trained on: the generated sample")
        assert "they do not detect real deepfakes" in trained.text
        assert trained.get_attribute("class") == "warn"
        # At the top: right after the verdict, above the file input.
        order = driver.execute_script(
            "return [...document.body.children].map(e => e.id || e.tagName)"
        )
        assert order.index("verdict") + 1 == order.index("trained") < order.index("drop")
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
