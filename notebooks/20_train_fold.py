# ---
# jupyter:
#   kernelspec:
#     display_name: Python (dfdc)
#     language: python
#     name: dfdc
# ---

# %% [markdown]
# # 20 · Train one fold
# A timm backbone with a 1-logit head on the faces stage's crops: balanced epochs, albumentations,
# label-smoothed BCE, warmup + cosine, checkpoint on video-level validation log loss, resume.
# With `section = "sequence"` (the train_sequence stage): per-frame embeddings along each face
# track into an LSTM/GRU, through the same loop.

# %% tags=["parameters"]
# Parameters: papermill sets them under `dvc repro`; in JupyterLab edit them here. Paths are
# relative to the project root, where the "Python (dfdc)" kernel starts whatever the folder.
# Another dataset or run: point params_path at a copy of params.yaml that changes it (e.g.
# data.source: ffpp, or train.run: mine), or run `dvc exp run -S key=value` and reopen.
params_path = "params.yaml"
fold = 0  # another fold: any of params.yaml cv.folds (0..cv.n_folds-1)
smoke = False  # True: a quick look (fewer videos, frames or epochs), as the tests run it
section = "train"  # or "sequence": the params.yaml section to train

# %%
import pandas as pd
from IPython.display import display

from dfdc.core.config import load_params, run_config
from dfdc.core.logs import setup_logging
from dfdc.core.metrics import binary_metrics
from dfdc.reports import plots
from dfdc.stages import train, train_sequence

setup_logging()  # log lines and progress bars stream to the terminal under dvc repro
params = load_params(params_path)
run_cfg = run_config(params, section)
print(run_cfg)

# %% [markdown]
# ## Difference masks
# Where fakes differ from their originals (the masks stage), shown when this run uses them
# (`train.masks`: segmentation head, guided part dropout).

# %%
if getattr(run_cfg, "masks", None) is not None and run_cfg.masks.used:
    plots.plot_masks(
        pd.read_parquet(params.masks.table_path), pd.read_parquet(params.faces.table_path)
    )
else:
    print("this run does not use the difference masks")

# %% [markdown]
# ## Train

# %%
# The train stage trains the train section, train_sequence the sequence section.
stage = {m.SECTION: m for m in (train, train_sequence)}[section]
result = stage.run(params, fold, smoke=smoke)
print(
    f"best epoch {result.best_epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.best.items())
)

# %% [markdown]
# ## Training curves

# %%
plots.plot_curves(result.history)
# %% [markdown]
# ## Out-of-fold predictions (best epoch)

# %%
oof = pd.read_parquet(result.out_dir / "oof.parquet")
display(pd.Series(binary_metrics(oof["label"], oof["video_prob"])).to_frame(f"fold {fold}"))
plots.plot_roc_reliability(oof["label"].to_numpy(), oof["video_prob"].to_numpy())
oof[["video", "label", "part", "video_prob"]].sort_values("video_prob")
