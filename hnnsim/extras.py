"""Optional dependencies: the core (simulate, files, analysis) needs only numpy, numba,
scipy, h5py and tqdm; training needs PyTorch (``hnnsim[learn]``), plots matplotlib
(``hnnsim[plot]``), the DeepChem wrapper DeepChem (``hnnsim[deepchem]``)."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

#: import name -> (what it is, the extra that installs it)
EXTRAS = {
    "torch": ("PyTorch", "learn"),
    "matplotlib": ("matplotlib", "plot"),
    "deepchem": ("DeepChem", "deepchem"),
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        name, extra = EXTRAS.get(top, (top, None))
        how = f"pip install 'hnnsim[{extra}]'" if extra else f"pip install {top}"
        raise MissingExtraError(f"{purpose} needs {name}, which is not installed ({exc}): {how}") from None


def figure(purpose: str, **kwargs):
    """A matplotlib :class:`~matplotlib.figure.Figure` that draws off screen without touching
    the user's backend (no ``matplotlib.use``, no pyplot state)."""
    require("matplotlib", purpose)
    from matplotlib.figure import Figure

    return Figure(**kwargs)
