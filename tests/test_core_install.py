"""The core (simulate, resume, files, analysis, the integrator demo) works without the
optional dependencies, and each optional feature names the extra that installs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = textwrap.dedent("""
    import sys

    class Missing:
        # as if torch, matplotlib and deepchem were not installed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "matplotlib", "deepchem"):
                raise ModuleNotFoundError(f"No module named {name!r}")

    sys.meta_path.insert(0, Missing())
    import os
    out = sys.argv[1]
    from hnnsim import MissingExtraError, Simulator, open_trajectory
    from hnnsim.cli import main
    import integrators, systems

    f = os.path.join(out, "p.h5")
    assert main(["simulate", "pendulum", "--steps", "200", "--every", "10", "-o", f, "-q"]) == 0
    assert main(["simulate", "--resume", f, "--steps", "100", "-q"]) == 0
    assert main(["info", f]) == 0
    assert main(["analyze", f]) == 0
    assert len(open_trajectory(f)) == 31
    assert main(["demo", "--integrators", "--quick", "--outdir", os.path.join(out, "demo")]) == 0
    print("TRAIN", main(["train", f, "-o", os.path.join(out, "m.hnn"), "-q"]))
    print("DEMO", main(["demo", "--quick", "--outdir", os.path.join(out, "demo2")]))
    for mod in ("hnnsim.learn", "hnnsim.deepchem"):
        try:
            __import__(mod)
        except MissingExtraError as exc:
            assert isinstance(exc, ImportError)
            print("IMPORT", mod, exc)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "matplotlib", "deepchem"))
    print("LOADED", loaded)
""")


def test_core_works_without_torch_matplotlib_deepchem(tmp_path):
    res = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "TRAIN 2" in out and "DEMO 2" in out
    assert "hnnsim train needs PyTorch, which is not installed" in res.stderr
    assert "pip install 'hnnsim[learn]'" in res.stderr
    assert "IMPORT hnnsim.learn hnnsim.learn (training Hamiltonian neural networks) needs PyTorch" in out
    assert "IMPORT hnnsim.deepchem" in out and "hnnsim[learn]" in out
    assert "no energy.png" in out and "pip install 'hnnsim[plot]'" in out
    assert "LOADED []" in out
    assert not (tmp_path / "m.hnn").exists()
