"""What a page the project writes loads from the network: every resource a browser would fetch
on opening it (``src`` of scripts, images, frames and media, ``href`` of stylesheets, icons and
preloads, ``@import`` and ``url()`` in its CSS), kept where it is not on this machine or inside
the page. Links a reader may follow (``<a href>``) are not loads. Used by the tests of every
page: the executed notebooks, ``dvc plots show``, the reports, the browser page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

# Where a URL is fetched without asking the reader.
LOADING = {
    "script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "frame": ("src",),
    "embed": ("src",), "source": ("src", "srcset"), "video": ("src", "poster"),
    "audio": ("src",), "track": ("src",), "input": ("src",), "object": ("data",),
    "link": ("href",),  # stylesheets, icons, preloads, module preloads
}  # fmt: skip
# Inside the page or on this machine; a path with no scheme is relative (but ``//host/x`` is not).
LOCAL = re.compile(r"^(data:|blob:|about:|javascript:|file:|#)|^(?!//)[^:]*$", re.I)
CSS_URL = re.compile(r"""@import\s+(?:url\()?\s*['"]?([^'")\s;]+)|url\(\s*['"]?([^'")\s]+)""")


class _Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = tag == "style"
        for name, value in attrs:
            if value and name in LOADING.get(tag, ()):
                self.urls += [u.split()[0] for u in value.split(",") if u.strip()]
            if value and name == "style":
                self.urls += _css_urls(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.urls += _css_urls(data)


def _css_urls(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # a URL in a comment loads nothing
    return [a or b for a, b in CSS_URL.findall(css)]


def remote_loads(html: str) -> list[str]:
    """The URLs ``html`` would fetch from another machine when opened."""
    parser = _Loads()
    parser.feed(html)
    return [u for u in parser.urls if not LOCAL.match(u.strip())]


def pages_loading_remote(folder: Path) -> dict[str, list[str]]:
    """Every ``.html`` under ``folder`` that loads something remote, with what it loads."""
    found = {}
    for page in sorted(Path(folder).rglob("*.html")):
        urls = remote_loads(page.read_text(errors="replace"))
        if urls:
            found[str(page)] = urls
    return found
