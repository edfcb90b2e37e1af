"""The notebooks as JupyterLab runs them: a server started as ``make lab`` starts it, a kernel
started for a notebook through the REST API (so in ``notebooks/``, as Lab does), the cells run
over the kernel's websocket; and once in a real browser (headless Chromium).

The project is a scratch copy: this repo's notebooks, ``dvc.yaml`` and a ``params.yaml`` whose
outputs lie in its own folder, with the tiny sample's index, faces and folds already made.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import jupytext
import pytest

from tests.conftest import ROOT, write_params
from tests.lab import LabServer, output_text, run_notebook_in_lab

NOTEBOOKS = ("notebooks/00_eda.py", "notebooks/10_extract_faces.py", "notebooks/20_train_fold.py")


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_stage, tiny_raw) -> Path:
    proj = tmp_path_factory.mktemp("lab_project")
    work = proj / "work"
    shutil.copytree(tiny_stage, work)
    shutil.copytree(ROOT / "notebooks", proj / "notebooks")
    for name in ("dvc.yaml", "jupytext.toml"):
        shutil.copy(ROOT / name, proj / name)
    # The face settings that made the tiny crops (tests.conftest.faces_cfg), so faces resume.
    write_params(
        proj / "params.yaml", work, data={"raw_dir": str(tiny_raw)},
        faces={"detect_every": 4},
    )  # fmt: skip
    return proj


@pytest.fixture(scope="module")
def lab(project, tmp_path_factory):
    server = LabServer(project, tmp_path_factory.mktemp("lab_log") / "lab.log").start()
    yield server
    server.stop()


def _cwd(lab: LabServer, kernel: str) -> str:
    (lab.root / "notebooks" / "where.py").write_text("# %%\nimport os\nprint(os.getcwd())\n")
    results = run_notebook_in_lab(lab, "notebooks/where.py", kernel=kernel)
    (lab.root / "notebooks" / "where.py").unlink()
    return output_text(results).strip()


def test_the_dfdc_kernel_starts_at_the_project_root(lab, project):
    # Lab starts a notebook's kernel in the notebook's folder: the plain kernel shows it ...
    assert Path(_cwd(lab, "python3")) == (project / "notebooks").resolve()
    # ... and the workspace's kernel moves to the root, where params.yaml's paths start.
    assert Path(_cwd(lab, "dfdc")) == project.resolve()


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_runs_top_to_bottom_in_lab(lab, path):
    results = run_notebook_in_lab(lab, path, timeout=600)
    cells = [c for c in jupytext.read(lab.root / path).cells if c.cell_type == "code"]
    text = output_text(results)
    assert [r.status for r in results] == ["ok"] * len(cells), text[-3000:]
    assert not any(r.errors for r in results), text[-3000:]
    assert "Traceback" not in text, text[-3000:]


def test_progress_bars_are_widgets_in_lab(lab):
    """In Lab a bar is a widget (what the browser draws as a bar); under papermill, text."""
    (lab.root / "notebooks" / "bars.py").write_text(
        "# %%\nfrom dfdc.core.progress import progress\nfor _ in progress(range(2)):\n    pass\n"
    )
    try:
        results = run_notebook_in_lab(lab, "notebooks/bars.py")
    finally:
        (lab.root / "notebooks" / "bars.py").unlink()
    shown = [o for r in results for o in r.outputs if o["msg_type"] == "display_data"]
    assert any("application/vnd.jupyter.widget-view+json" in o["data"] for o in shown), shown


def test_progress_bars_are_text_under_papermill(tmp_path):
    from dfdc.core.notebooks import run_notebook

    nb = tmp_path / "bars.py"
    nb.write_text(
        "# %%\nfrom dfdc.core.progress import progress\nfor _ in progress(range(2), desc='x'):\n"
        "    pass\n"
    )
    out = run_notebook(nb, tmp_path / "bars.ipynb", html=False, stream=False)
    outputs = [o for c in jupytext.read(out).cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "display_data"], outputs
    assert any(o.get("name") == "stderr" and "x: 100%" in o["text"] for o in outputs), outputs


def test_opening_and_saving_a_notebook_leaves_only_the_py(lab, project):
    """The contents API is what Lab's editor uses: a ``.py`` opens as a notebook and saving it
    writes the ``.py`` back unchanged, with no paired ``.ipynb`` beside it."""
    path = "notebooks/00_eda.py"
    before = (project / path).read_text()
    model = lab.get(f"/api/contents/{path}?type=notebook&content=1")
    assert model["type"] == "notebook" and model["content"]["cells"]
    lab.request("PUT", f"/api/contents/{path}", {
        "type": "notebook", "format": "json", "content": model["content"],
    })  # fmt: skip
    assert not list((project / "notebooks").glob("*.ipynb"))
    assert (project / path).read_text() == before


CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.mark.skipif(
    not (CHROMIUM.exists() and DRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver; .ci/run installs them)",
)
def test_a_notebook_runs_in_jupyterlab_in_a_real_browser(lab, tmp_path):
    """Headless Chromium opens Lab's URL and the EDA notebook, runs its first cells with
    Shift+Enter, and finds no error output and an idle kernel; a screenshot is kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    shot = tmp_path / "lab.png"
    try:
        # A workspace of its own, so Lab restores no tabs of an earlier session.
        workspace = f"/lab/workspaces/t{time.time_ns()}/tree/notebooks/00_eda.py"
        driver.get(f"{lab.url}{workspace}?token={lab.token}&reset")
        wait = WebDriverWait(driver, 120)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
        # The kernel picked from the notebook's metadata, connected and idle.
        wait.until(lambda d: _kernel_state(lab) == "idle")
        # Click the first cell, then Shift+Enter (run and advance) from the keyboard.
        first = driver.find_element(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .jp-RenderedMarkdown")
        ActionChains(driver).move_to_element(first).click().perform()
        n_run = 4  # the title, the parameters, the first code cell and its heading
        for _ in range(n_run):
            ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(
                Keys.SHIFT
            ).perform()
            time.sleep(0.5)
        # Done when the third cell has an execution count and the kernel is idle again.
        wait.until(lambda d: _kernel_state(lab) == "idle" and _counts(d) >= 2)
        driver.save_screenshot(str(shot))
        errors = driver.find_elements(
            By.CSS_SELECTOR, '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'
        )
        outputs = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea"))
        assert not errors, [e.text for e in errors]
        assert "Traceback" not in outputs and "Error" not in outputs, outputs[-2000:]
        assert "videos" in outputs and "readable" in outputs, outputs[-2000:]
    finally:
        if not shot.exists():
            driver.save_screenshot(str(shot))
        driver.quit()
    assert shot.stat().st_size > 10_000


def _kernel_state(lab: LabServer) -> str | None:
    kernels = lab.get("/api/kernels")
    return kernels[0]["execution_state"] if len(kernels) == 1 else None


def _counts(driver) -> int:
    from selenium.webdriver.common.by import By

    prompts = driver.find_elements(By.CSS_SELECTOR, ".jp-InputArea-prompt")
    return sum(1 for p in prompts if p.text.strip() not in ("", "[ ]:", "[*]:"))
