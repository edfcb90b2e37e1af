# ---
# jupyter:
#   kernelspec:
#     display_name: Python (dfdc)
#     language: python
#     name: dfdc
# ---

# %% [markdown]
# # 30 · Ensemble, out-of-fold scores and the submission
# Frame-to-video rules compared out of fold, run weights, temperature and clip bound fitted out
# of fold (and scored nested by fold), then the test videos scored into `submission.csv`.

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
from dfdc.reports import plots
from dfdc.reports.video_report import plot_gallery
from dfdc.stages.ensemble import mistake_gallery, run

setup_logging()  # log lines and progress bars stream to the terminal under dvc repro
params = load_params(params_path)

# %% [markdown]
# ## Run

# %%
result = run(params, smoke=smoke)
report = result.report
print(result.trained_on)  # sample models check the pipeline; they detect no real deepfake
pd.Series({k: result.metrics[k] for k in ("logloss", "auc", "accuracy", "n_videos")}).to_frame(
    "out of fold"
)

# %% [markdown]
# ## Frame-to-video rules (first run, out of fold)

# %%
report.rules

# %% [markdown]
# ## Fitting versus equal weights
# "nested" fits weights, temperature and clip on the other folds and scores the held-out fold.

# %%
display(report.table)
print(report.ensemble)

# %% [markdown]
# ## Per part

# %%
pd.DataFrame(result.metrics["per_part"]).T

# %% [markdown]
# ## ROC, reliability, scores by label (nested out-of-fold)

# %%
plots.plot_roc_reliability(report.matrix["label"].to_numpy(), report.oof_prob)
# %% [markdown]
# ## Log loss versus clip bound

# %%
ax = report.clip_curve.plot(x="clip", y="logloss", marker="o", figsize=(5, 3), legend=False)
ax.set_ylabel("out-of-fold log loss")
ax.axvline(report.ensemble.clip, color="grey", ls=":")
# %% [markdown]
# ## Gallery: the most confident out-of-fold mistakes
# Real videos scored highest and fakes scored lowest among those on the wrong side of 0.5, each
# reported (frames, timeline, heatmaps) with its own fold's models, which never trained on it.

# %%
gallery = mistake_gallery(params, report, tempfile.mkdtemp(), k=2)
print(f"{len(gallery)} confident out-of-fold mistakes among the original videos")
plot_gallery(gallery)

# %% [markdown]
# ## Submission

# %%
sub = result.submission
print(f"{len(sub)} rows, NaN {int(sub['label'].isna().sum())}")
print(f"min {sub['label'].min():.3f}, max {sub['label'].max():.3f}")
print("local test score:", result.test)
sub.head(10)
