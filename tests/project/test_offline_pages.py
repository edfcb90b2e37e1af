"""No page the project writes loads anything from the network (STYLE: every page works
offline): the executed notebooks' HTML, the browser page's source, and ``dvc plots show`` with
the project's template, the last rendered in headless Chromium with every remote request
blocked. The reports of ``dfdc predict``/``dfdc evaluate`` are scanned where they are written
(tests/inference/test_report.py)."""

from __future__ import annotations

import re

import nbformat
import pytest

from dfdc.core.notebooks import notebook_html
from tests.conftest import ROOT
from tests.offline import pages_loading_remote, remote_loads


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
    """web/index.html as ``dfdc export --web`` copies it (its scripts come from vendor/)."""
    assert pages_loading_remote(ROOT / "web") == {} or pytest.fail(
        str(pages_loading_remote(ROOT / "web"))
    )
