"""The README's picture of what ``make repro`` gives: the ensemble's out-of-fold ROC and
reliability (``metrics/plots``) and the test-set log loss under each robustness distortion
(``metrics/robustness``), drawn from the metrics files a ``dvc repro`` wrote.

    python scripts/readme_figure.py            # -> docs/images/repro.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from dfdc.core.io import save_figure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics", default="metrics")
    ap.add_argument("--out", default="docs/images/repro.png")
    args = ap.parse_args()
    metrics = Path(args.metrics)
    cv = json.loads((metrics / "cv.json").read_text())
    roc = pd.read_csv(metrics / "plots" / "roc.csv")
    rel = pd.read_csv(metrics / "plots" / "reliability.csv")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].plot(roc["fpr"], roc["tpr"], drawstyle="steps-post")
    axes[0].plot([0, 1], [0, 1], ":", color="grey")
    axes[0].set(title=f"out-of-fold ROC ({cv['n_videos']} videos)", xlabel="false positive rate",
                ylabel="true positive rate")  # fmt: skip
    axes[1].plot(rel["predicted"], rel["observed"], "o-")
    axes[1].plot([0, 1], [0, 1], ":", color="grey")
    axes[1].set(title=f"reliability (log loss {cv['logloss']:.3f})", xlabel="predicted P(fake)",
                ylabel="observed fraction fake")  # fmt: skip
    rows = []
    for f in sorted((metrics / "robustness").glob("*.csv")):
        table = pd.read_csv(f)
        worst = table[table["level"] != "clean"]["logloss"].max()
        if pd.notna(worst):
            rows.append((f.stem, worst))
    if rows:
        names, values = zip(*rows, strict=True)
        axes[2].barh(names, values)
        axes[2].set(title="robustness: worst log loss per distortion", xlabel="log loss")
    fig.suptitle("After make repro, on the generated sample (metrics/, dvc plots show)")
    fig.tight_layout()
    save_figure(fig, args.out, dpi=90)
    print(args.out)


if __name__ == "__main__":
    main()
