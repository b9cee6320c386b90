"""aicircle: system dynamics of the AI capital circle.

Compile any non-subscripted Vensim or XMILE model that PySD reads into
vectorised numpy code, integrate it with Euler, RK4 or scipy's ``solve_ivp``,
calibrate it, and find its tipping points. The capital-circle study is one
client of this toolkit, in :mod:`aicircle.study`.

>>> import aicircle as ac
>>> model = ac.load(ac.shipped_model())      # doctest: +SKIP
>>> df = model.simulate()                    # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from . import calibrate, observables, sensitivity, study, tipping
from ._resources import shipped_model, shipped_parameters, shipped_targets
from .errors import (AicircleError, IntegrationError, InvalidInput, ModelReadError, ResourceLimit,
                     TargetFileError, UnknownName, UnsupportedFeature)
from .model import Model
from .model import load as _load
from .study.observables import OBSERVABLES

try:
    __version__ = version("aicircle")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"



def load(path, data_dirs=(), vocabulary=OBSERVABLES) -> Model:
    """Read and compile a ``.mdl`` or ``.xmile`` model (:func:`aicircle.model.load`).

    The package's face gives the vocabulary of docs/design.md §3 (the
    capital-circle study's observables) by default, so that
    :meth:`Model.simulate_batch` returns the stocks and the observables the
    model defines; ``vocabulary=None`` gives the stocks alone.
    """
    return _load(path, data_dirs=data_dirs, vocabulary=vocabulary)


__all__ = [
    "AicircleError", "IntegrationError", "InvalidInput", "Model", "ModelReadError", "ResourceLimit",
    "TargetFileError", "UnknownName", "UnsupportedFeature", "__version__", "calibrate", "load",
    "observables", "sensitivity", "shipped_model", "shipped_parameters", "shipped_targets", "study",
    "tipping",
]
