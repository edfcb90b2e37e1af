"""dfdc-workspace: the package behind the DVC stages, the notebooks and ``dfdc``."""

import warnings

# torch.cuda imports pynvml, a deprecated shim that dvclive pulls in, and it warns on every
# import of torch; silenced here, the first thing any dfdc import runs, and nowhere else.
warnings.filterwarnings(
    "ignore", message="The pynvml package is deprecated", category=FutureWarning
)
# Where ipywidgets is missing from a kernel, tqdm.auto falls back to text bars (what the stages
# stream to the terminal anyway, dfdc.core.progress); its warning about the widget is noise.
warnings.filterwarnings("ignore", message="IProgress not found")
