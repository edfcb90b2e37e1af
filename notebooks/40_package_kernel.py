# ---
# jupyter:
#   kernelspec:
#     display_name: Python (dfdc)
#     language: python
#     name: dfdc
# ---

# %% [markdown]
# # 40 · Package the offline Kaggle kernel
# The kernel script, its metadata, and two datasets (models; code as wheels), built from the
# package and the trained models. Upload with the Kaggle CLI (docs/kaggle.md).

# %% tags=["parameters"]
# Parameters: papermill sets them under `dvc repro`; in JupyterLab edit them here. Paths are
# relative to the project root, where the "Python (dfdc)" kernel starts whatever the folder.
# Another dataset or run: point params_path at a copy of params.yaml that changes it (e.g.
# data.source: ffpp, or train.run: mine), or run `dvc exp run -S key=value` and reopen.
params_path = "params.yaml"
smoke = False  # True: a quick look (fewer videos, frames or epochs), as the tests run it

# %%
import json

import pandas as pd
from IPython.display import display

from dfdc.core.config import load_params
from dfdc.core.logs import setup_logging
from dfdc.stages.package import run

setup_logging()  # log lines and progress bars stream to the terminal under dvc repro
params = load_params(params_path)

# %% [markdown]
# ## Build

# %%
result = run(params, smoke=smoke)
out = result.out
files = [(str(p.relative_to(out)), p.stat().st_size) for p in sorted(out.rglob("*")) if p.is_file()]
pd.DataFrame(files, columns=["file", "bytes"])

# %% [markdown]
# ## Metadata

# %%
for meta in (
    "kernel/kernel-metadata.json",
    "models/dataset-metadata.json",
    "code/dataset-metadata.json",
):
    print(meta)
    print(json.dumps(json.loads((out / meta).read_text()), indent=1))

# %% [markdown]
# ## Time budget
# Seconds a video measured here, projected to 4,000 videos with the stated Kaggle GPU speed-up,
# against the competition's 9 hours.

# %%
display(pd.Series(result.timing).to_frame("kernel"))
if not result.timing.get("fits", True):
    print("WARNING: the projection exceeds the 9-hour budget")
