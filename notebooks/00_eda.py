# ---
# jupyter:
#   kernelspec:
#     display_name: Python (dfdc)
#     language: python
#     name: dfdc
# ---

# %% [markdown]
# # 00 · Exploratory data analysis
# What the video index says about the data: labels per part, fakes per original, probed
# properties, sample frames, where a fake differs from its original, and what is broken.

# %% tags=["parameters"]
# Parameters: papermill sets them under `dvc repro`; in JupyterLab edit them here. Paths are
# relative to the project root, where the "Python (dfdc)" kernel starts whatever the folder.
# Another dataset or run: point params_path at a copy of params.yaml that changes it (e.g.
# data.source: ffpp, or train.run: mine), or run `dvc exp run -S key=value` and reopen.
params_path = "params.yaml"
index_path = ""  # empty: the index the data stage wrote (params.yaml: data.index_path)
smoke = False  # True: a quick look (fewer videos, frames or epochs), as the tests run it

# %%
from IPython.display import display

from dfdc.core.config import load_params
from dfdc.core.logs import setup_logging
from dfdc.dataset import explore
from dfdc.stages.eda import run

setup_logging()  # log lines and progress bars stream to the terminal under dvc repro
params = load_params(params_path)
result = run(params, index_path)
index = result.index
n_frames = 3 if smoke else params.eda.sample_frames
max_videos = 4 if smoke else params.eda.max_grid_videos
print(f"{len(index)} videos, {int(index['readable'].sum())} readable")
result.counts

# %% [markdown]
# ## Labels per part

# %%
display(result.balance)
explore.plot_label_balance(index)
# %% [markdown]
# ## Fakes per original

# %%
fpo = result.fakes_per_original
display(fpo.head(20))
print(f"{len(fpo)} originals; {int(fpo['original_present'].sum())} of them present as files")

# %% [markdown]
# ## Probed properties

# %%
display(index[[*explore.PROPERTIES, "codec", "has_audio", "rotation"]].describe(include="all").T)
explore.plot_properties(index)
# %% [markdown]
# ## Sample frames

# %%
fig = explore.plot_frame_grid(
    index, n_frames=n_frames, max_videos=max_videos, seed=params.base.seed
)
if fig is None:
    print("no readable video to show")

# %% [markdown]
# ## Fake versus original
# DFDC fakes are pixel-aligned with their original, so the difference shows the edited region.

# %%
fig = explore.plot_difference(index, max_pairs=1 if smoke else 3)
if fig is None:
    print("no fake whose original is present")

# %% [markdown]
# ## Unreadable or missing files

# %%
bad = result.problems
print(f"{len(bad)} unreadable or missing")
display(bad.head(50))
