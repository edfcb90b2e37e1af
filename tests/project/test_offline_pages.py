"""No page the project writes loads anything from the network (STYLE: every page works
offline): the executed notebooks' HTML, the browser page's source, and ``dvc plots show`` with
the project's template, the last rendered in headless Chromium with every remote request
blocked. The reports of ``dfdc predict``/``dfdc evaluate`` are scanned where they are written
(tests/inference/test_report.py)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from dfdc.core.notebooks import notebook_html
from dfdc.inference.web import CHROMEDRIVER, CHROMIUM
from tests.conftest import ROOT
from tests.offline import remote_loads

DVC = Path(sys.executable).with_name("dvc")


def test_the_scanner_sees_what_a_browser_would_fetch():
    page = """<html><head><script src="https://cdn.example/vega.js"></script>
    <script src="vendor/local.js"></script><link rel="stylesheet" href="//fonts.example/f.css">
    <style>/* https://in.a/comment.css */ @import url("https://css.example/a.css");
    .x { background: url(data:image/png;base64,AAAA) }
    .y { background: url('http://i.example/b.png') }
    </style></head><body><a href="https://example.com/read-more">a link is not a load</a>
    <img src="data:image/png;base64,AAAA"><img srcset="small.png 1x, https://i.example/c.png 2x">
    <div style="background-image: url(https://i.example/d.png)"></div>
    <script>const s = '<script src="https://not.parsed/inside-a-script.js">';</script>
    </body></html>"""
    assert remote_loads(page) == [
        "https://cdn.example/vega.js",
        "//fonts.example/f.css",
        "https://css.example/a.css",
        "http://i.example/b.png",
        "https://i.example/c.png",
        "https://i.example/d.png",
    ]


def _notebook() -> nbformat.NotebookNode:
    """A small executed notebook: text with a link and TeX, a table, a picture."""
    nb = nbformat.v4.new_notebook()
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="  # noqa: E501
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Results\nSee https://example.com and $x^2$."),
        nbformat.v4.new_code_cell("df", execution_count=1, outputs=[
            nbformat.v4.new_output("execute_result", execution_count=1,
                                   data={"text/html": "<table><tr><td>1</td></tr></table>",
                                         "text/plain": "1"}),
            nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "fig"}),
        ]),
    ]  # fmt: skip
    return nb


def test_executed_notebooks_html_loads_nothing_remote(tmp_path):
    from nbconvert import HTMLExporter

    path = tmp_path / "nb.ipynb"
    nbformat.write(_notebook(), path)
    default, _ = HTMLExporter().from_filename(str(path))
    assert remote_loads(default), "nbconvert's own page loads require.js from a CDN"
    page = notebook_html(path)
    assert remote_loads(page) == []
    assert not re.findall(r"<script[^>]*\bsrc=", page) and "MathJax" not in page
    assert '<a href="https://example.com">' in page  # the text's link is kept
    assert "data:image/png;base64," in page and "<table>" in page


def test_the_browser_page_source_loads_nothing_remote():
    """web/index.html as ``dfdc export --web`` copies it (its scripts come from vendor/), and
    the plots template before its scripts are inlined."""
    for page in (ROOT / "web" / "index.html", ROOT / "web" / "plots" / "template.html"):
        assert remote_loads(page.read_text()) == [], page


needs_browser = pytest.mark.skipif(
    shutil.which("npm") is None or not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs npm (the pinned vega builds) and Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver; .ci/run installs them)",
)


def render_offline(page: Path, screenshot: Path | None = None, window: str = "1400,1000"):
    """Open ``page`` (a file) in headless Chromium with every http(s) and websocket request
    blocked; returns the charts the page embeds (and how many have no data), how many canvases
    vega-embed made (and how many are not 0 x 0), the remote requests the page made (blocked)
    and the console's errors."""
    from dfdc.inference.web import chromium

    driver = chromium(window=window)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        blocked = ["http://*", "https://*", "ws://*", "wss://*"]
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": blocked})
        driver.get(page.as_uri())
        html = page.read_text()
        # DVC writes an empty spec for a plot file with no rows (the evaluate stage's, when
        # evaluate.sets is empty): vega-embed draws it as a 0 x 0 canvas.
        expected, empty = html.count("vegaEmbed('#"), html.count("var spec = {};")
        t0, drawn, sized = time.monotonic(), 0, 0
        while time.monotonic() - t0 < 60:
            drawn, sized = driver.execute_script(
                "const c = [...document.querySelectorAll('.vega-embed canvas')];"
                "return [c.length, c.filter(e => e.width > 0 && e.height > 0).length]"
            )
            if drawn >= expected or driver.execute_script("return typeof vegaEmbed") != "function":
                break
            time.sleep(0.2)
        remote = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith('file:') && !n.startsWith('data:'))"
        )
        if screenshot is not None:
            driver.save_screenshot(str(screenshot))
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        return {"expected": expected, "empty": empty, "drawn": drawn, "sized": sized,
                "remote": remote, "errors": errors}  # fmt: skip
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def plots_template() -> Path:
    """The template ``make plots-page`` builds, where .dvc/config's plots.html_template points."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    configured = (ROOT / ".dvc" / config["plots"]["html_template"]).resolve()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "plots_page.py")],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert configured == (ROOT / "web" / "plots" / "dvc_plots.html").resolve()
    assert configured.is_file()
    return configured


@needs_browser
def test_dvc_plots_show_renders_offline(plots_template, tmp_path):
    """``dvc plots show`` of the project's committed plots (ROC, reliability, clip curve,
    robustness, every fold's training curves) with the configured template: every chart drawn
    in Chromium with the network blocked, nothing remote requested, no console error. DVC's
    own template, the control, draws nothing there."""
    out = tmp_path / "plots"
    done = subprocess.run([str(DVC), "plots", "show", "-o", str(out)], capture_output=True,
                          text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    page = out / "index.html"
    assert remote_loads(page.read_text()) == []
    got = render_offline(page, tmp_path / "plots.png")
    assert got["expected"] >= 10, got  # the project's plots
    assert got["drawn"] == got["expected"] and not got["remote"] and not got["errors"], got
    assert got["sized"] == got["expected"] - got["empty"], got
    assert (tmp_path / "plots.png").stat().st_size > 20_000

    # The control: DVC's own page (its CDN script tags) under the same blocking.
    from dvc_render.html import PAGE_HTML

    (tmp_path / "dvc_default.html").write_text(PAGE_HTML)
    control = tmp_path / "control"
    done = subprocess.run([str(DVC), "plots", "show", "-o", str(control), "--html-template",
                           str(tmp_path / "dvc_default.html")], capture_output=True, text=True,
                          cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert remote_loads((control / "index.html").read_text())  # the CDN's vega
    got = render_offline(control / "index.html")
    assert got["drawn"] == 0 and any("vegaEmbed is not defined" in e for e in got["errors"])
