# ---
# jupyter:
#   kernelspec:
#     display_name: Python (dfdc)
#     language: python
#     name: dfdc
# ---

# %% [markdown]
# # 10 · Face extraction
# Sampled frames -> the detector (`faces.detector`: MTCNN, BlazeFace or both) on every k-th frame
# -> IoU tracks -> square crops with a margin, one
# `.npz` per video. Fakes reuse their original's boxes. Reruns skip finished videos.

# %% tags=["parameters"]
# Parameters: papermill sets them under `dvc repro`; in JupyterLab edit them here. Paths are
# relative to the project root, where the "Python (dfdc)" kernel starts whatever the folder.
# Another dataset or run: point params_path at a copy of params.yaml that changes it (e.g.
# data.source: ffpp, or train.run: mine), or run `dvc exp run -S key=value` and reopen.
params_path = "params.yaml"
smoke = False  # True: a quick look (fewer videos, frames or epochs), as the tests run it

# %%
import pandas as pd
from IPython.display import display

from dfdc.core.config import load_params
from dfdc.core.logs import setup_logging
from dfdc.faces import plots
from dfdc.stages.faces import run

setup_logging()  # log lines and progress bars stream to the terminal under dvc repro
params = load_params(params_path)
cfg = params.faces

# %% [markdown]
# ## Run

# %%
result = run(params)
table, status = result.table, result.status
print(f"{len(table)} crops from {len(status)} videos")
status["status"].value_counts().to_frame("videos")

# %% [markdown]
# ## Detection rate per video

# %%
summary = plots.detection_summary(status, cfg.frames)
plots.plot_detection_rate(summary)
# %% [markdown]
# ## Videos with no track, or with several

# %%
display(summary[summary["status"] != "ok"])
display(summary[summary.get("tracks", 0).fillna(0) > 1])

# %% [markdown]
# ## Two detectors: what each found (`faces.detector: both`)
# Faces MTCNN and BlazeFace each found on the detection frames, and those both found (the
# only ones kept). Shown when the run used `both`.

# %%
agreement = plots.detector_agreement(status)
if agreement is None:
    print(f"faces.detector is {cfg.detector}: one detector, nothing to compare")
else:
    plots.plot_detector_agreement(agreement)
    display(agreement)

# %% [markdown]
# ## Crops

# %%
fig = plots.plot_crop_grid(table, n_videos=4 if smoke else 8)
if fig is None:
    print("no crops")

# %% [markdown]
# ## Boxes and landmarks on frames

# %%
index = pd.read_parquet(params.data.index_path).set_index("name")
shown = table["video"].drop_duplicates().head(1 if smoke else 3)
for video in shown:
    plots.plot_boxes_on_frames(table, index.loc[video, "path"], video)

# %% [markdown]
# ## Time per video

# %%
plots.plot_seconds(summary)
summary["seconds"].describe().to_frame()
