# ---
# jupyter:
#   kernelspec:
#     display_name: Python (dfdc)
#     language: python
#     name: dfdc
# ---

# %% [markdown]
# # 50 · Robustness to the DFDC black-box distortions
# Held-out videos (each training video scored by its own fold's models only, the labelled test
# videos by the whole ensemble) scored clean and re-encoded under each distortion and severity
# of `robustness` in params.yaml: frame rate, downscale, compression, overlays, flip,
# brightness/contrast, noise, blur and a mix, with a plain re-encode as the control. The DFDC
# winner lost 17 points of average precision between the public and the black-box test sets.

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
from dfdc.robustness import plots
from dfdc.robustness.report import metrics_table
from dfdc.stages.robustness import run

setup_logging()  # log lines and progress bars stream to the terminal under dvc repro
params = load_params(params_path)
print({k: list(v) for k, v in params.robustness.levels().items()})

# %% [markdown]
# ## Run

# %%
result = run(params)
m = result.metrics
print(f"{m['videos']} videos ({', '.join(m['groups'])}); {len(m['skipped'])} skipped, "
      f"{len(m['failed'])} failed, {m['no_face']} scored with no face found")  # fmt: skip
display(metrics_table(m))

# %% [markdown]
# ## Log loss and AUC against severity

# %%
plots.plot_robustness(m)

# %% [markdown]
# ## What each distortion looks like (strongest level)

# %%
fig = plots.plot_distortion_frames(result.examples)
if fig is None:
    print("no clips")

# %% [markdown]
# ## Skipped and failed

# %%
display(pd.DataFrame(m["skipped"] + m["failed"]))
