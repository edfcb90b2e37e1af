"""Every benchmark script can be imported and says how to run it (``--help``): a benchmark
that has drifted from the package fails here, not on the day someone needs its figure."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name != "common.py")


def test_there_are_benchmarks():
    assert {"faces.py", "methods.py", "predict.py", "real_data.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_each_benchmark_imports_and_prints_its_help(script, monkeypatch, capsys):
    """In this process (a fresh interpreter a script would cost 5-10 s of imports each): the
    script's folder first on the path, as ``python benchmarks/X.py`` puts it, then its own
    ``main(["--help"])``."""
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import their helper, common.py
    monkeypatch.chdir(ROOT)
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the import runs no benchmark (main() is guarded)
    assert callable(getattr(module, "main", None)), f"{script.name} has no main()"
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_a_benchmark_runs_as_a_script():
    """One of them as a user runs it, in a fresh interpreter from the project's root."""
    res = subprocess.run(
        [sys.executable, str(BENCH / "real_cost.py"), "--help"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "usage:" in res.stdout


def test_the_methods_benchmark_trains_the_named_methods(monkeypatch):
    """``benchmarks/methods.py`` compares the methods ``train.method`` picks, not copies."""
    from dfdc.core.config import params_from_dict

    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_methods", BENCH / "methods.py")
    methods = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(methods)
    runs = methods.method_runs(params_from_dict({}).train)
    for name, run in runs.items():
        assert run == params_from_dict({"train": {"method": name, "run": name}}).train
