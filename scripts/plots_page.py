"""The HTML template ``dvc plots show`` fills, with vega, vega-lite and vega-embed inlined, so the
page renders offline. DVC's own page loads the three from a CDN: without network it stays
white ("vegaEmbed is not defined"). The builds are the ones ``web/plots/package-lock.json``
pins, installed by ``npm ci``; ``.dvc/config`` names the result as ``plots.html_template``.

    python scripts/plots_page.py    # (make plots-page; make install) -> web/plots/dvc_plots.html
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from dfdc.core.errors import UserError
from dfdc.core.io import write_text
from dfdc.inference.web import npm_install

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "web" / "plots"
# In load order: vega-lite and vega-embed read the globals the ones before them define.
BUILDS = ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js",
          "vega-embed/build/vega-embed.min.js")  # fmt: skip
MARK = "<!-- vega builds -->"
# What dvc_render's HTML replaces in a template; ``{scripts}`` (its CDN tags) is left out.
PLACEHOLDERS = ("{plot_divs}", "{refresh_tag}", "{scripts}")


def build(source: Path = SOURCE, out: Path | None = None) -> Path:
    """Install the pinned builds (``npm ci``, when not already installed from this lock file)
    and write the template; returns its path."""
    out = out or source / "dvc_plots.html"
    modules = npm_install(source)
    template = (source / "template.html").read_text()
    if MARK not in template or "{plot_divs}" not in template or "{scripts}" in template:
        raise UserError(f"{source / 'template.html'}: needs {MARK} and {{plot_divs}}, "
                        "and no {scripts} (DVC would put its CDN tags there)")  # fmt: skip
    scripts = []
    for rel in BUILDS:
        path = modules / rel
        if not path.is_file():
            raise UserError(f"{path}: missing from the installed npm packages (npm ci in {source})")
        js = path.read_text()
        found = [p for p in PLACEHOLDERS if p in js]
        if found:  # DVC would replace it inside the script
            raise UserError(f"{path}: contains {found[0]}, which DVC fills in templates")
        package = rel.split("/")[0]
        version = json.loads((modules / package / "package.json").read_text())["version"]
        # "</script" inside the code would end the inline element early.
        js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.I)
        scripts.append(f"<script>/* {package} {version} */\n{js}\n</script>")
    write_text(template.replace(MARK, "\n".join(scripts)), out)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=SOURCE, help="the npm folder (web/plots)")
    ap.add_argument("--out", type=Path, default=None, help="default: SOURCE/dvc_plots.html")
    args = ap.parse_args(argv)
    try:
        out = build(args.source, args.out)
    except UserError as exc:
        raise SystemExit(f"plots_page: {exc}") from None
    print(f"{out}: dvc plots show's template, vega inlined ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
