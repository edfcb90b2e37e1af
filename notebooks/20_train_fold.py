# %% [markdown]
# # 20 · Train one fold
# A timm backbone with a 1-logit head on the faces stage's crops: balanced epochs, albumentations,
# label-smoothed BCE, warmup + cosine, checkpoint on video-level validation log loss, resume.

# %% tags=["parameters"]
params_path = "params.yaml"
fold = 0
smoke = False

# %%
import pandas as pd
from IPython.display import display

from dfdc import plots
from dfdc.config import load_params
from dfdc.engine import train_fold
from dfdc.metrics import binary_metrics

params = load_params(params_path)
print(params.train.model)

# %% [markdown]
# ## Train

# %%
result = train_fold(params_path, fold, smoke=smoke)
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
