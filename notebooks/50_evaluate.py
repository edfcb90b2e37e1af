# ---
# jupyter:
#   kernelspec:
#     display_name: Python (dfdc)
#     language: python
#     name: dfdc
# ---

# %% [markdown]
# # 50 · Cross-dataset evaluation
# The fitted ensemble on labelled folders it never trained on (`evaluate.sets`: DFDC,
# FaceForensics++ or Celeb-DF layouts), through the same inference path as `dfdc predict`:
# video-level AUC, log loss, accuracy, EER and AP, per set, dataset, method and compression.

# %% tags=["parameters"]
# Parameters: papermill sets them under `dvc repro`; in JupyterLab edit them here. Paths are
# relative to the project root, where the "Python (dfdc)" kernel starts whatever the folder.
# Another dataset or run: point params_path at a copy of params.yaml that changes it (e.g.
# data.source: ffpp, or train.run: mine), or run `dvc exp run -S key=value` and reopen.
params_path = "params.yaml"
smoke = False  # True: a quick look (fewer videos, frames or epochs), as the tests run it

# %%
import tempfile

import pandas as pd
from IPython.display import display

from dfdc.core.config import load_params
from dfdc.core.logs import setup_logging
from dfdc.inference.predict import bundle_from_params
from dfdc.reports import plots
from dfdc.reports.evaluation import metrics_table
from dfdc.reports.video_report import mistake_reports, plot_gallery
from dfdc.stages.evaluate import run

setup_logging()  # log lines and progress bars stream to the terminal under dvc repro
params = load_params(params_path)
print("sets:", list(params.evaluate.sets) or "none (set evaluate.sets in params.yaml)")

# %% [markdown]
# ## Run

# %%
result = run(params)
if result.scores.empty:
    print("nothing to evaluate")
else:
    summary = result.summary()
    print(result.counts_line())
    display(metrics_table(summary))

# %% [markdown]
# ## ROC and reliability per set

# %%
scored = result.scores if not result.scores.empty else pd.DataFrame(columns=["set"])
for name, g in scored.groupby("set"):
    print(name)
    plots.plot_roc_reliability(g["label"].to_numpy(), g["prob"].to_numpy())

# %% [markdown]
# ## The most confident mistakes

# %%
if not result.scores.empty:
    s = result.scores.assign(error=(result.scores["prob"] - result.scores["label"]).abs())
    display(s.sort_values("error", ascending=False)[["set", "name", "method", "label", "prob"]]
            .head(10))  # fmt: skip

# %% [markdown]
# ## Gallery: the most confident false positives and false negatives
# Each one's report (frames, timeline, heatmaps) lies in a temporary folder here; for a kept
# one, `dfdc evaluate PATH --report DIR`.

# %%
if not result.scores.empty:
    bundle = bundle_from_params(params, "explain", ensemble=params.ensemble.ensemble_path)
    gallery = mistake_reports(lambda _: bundle, result.scores, tempfile.mkdtemp(), k=3)
    print(f"{len(gallery)} confident mistakes")
    plot_gallery(gallery)
