"""dfdc-workspace: the package behind the DVC stages, the notebooks and ``dfdc``."""

import warnings

# torch.cuda imports pynvml, a deprecated shim that dvclive pulls in, and it warns on every
# import of torch; silenced here, the first thing any dfdc import runs, and nowhere else.
warnings.filterwarnings(
    "ignore", message="The pynvml package is deprecated", category=FutureWarning
)
# In a notebook kernel without ipywidgets tqdm.auto falls back to text bars, which is what the
# stages want (they stream to the terminal); its warning about the missing widget is noise.
warnings.filterwarnings("ignore", message="IProgress not found")
