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


def _explorer_arguments(model, params=None, outcome=None, start_label=None) -> dict:
    """:func:`aicircle.explorer.explore`'s arguments for ``model``, the study's filled in.

    Where ``model`` defines them: the study's scenarios (toggles) and switches, its
    bust classifier read at its horizons (unless ``outcome`` is given); for the shipped
    model, its targets and, unless ``params`` says otherwise, its shipped calibration.
    """
    calibration, outcomes, scenarios = study.calibration, study.outcomes, study.scenarios
    shipped = model.path.resolve() == shipped_model().resolve()
    if params is None and shipped and shipped_parameters().exists():
        params = {k: v for k, v in calibrate.read_parameters(shipped_parameters()).items()
                  if k in model.parameters.index}
        start_label = "the shipped calibration"
    classifier = None if outcome else outcomes.default_classifier(model)
    return {"model": model, "params": params, "start_label": start_label,
            "switches": scenarios.switches(model),
            "scenarios": {name: (sc.description, sc.params)
                          for name, sc in scenarios.available(model).items()},
            "targets": calibration.targets() if shipped else None, "vocabulary": OBSERVABLES,
            "outcome": outcome, "classifier": classifier,
            "horizons": outcomes.HORIZONS if classifier else None,
            "bust_from": outcomes.FORECAST_START if classifier else None}


def explore(model=None, params=None, outcome=None):
    """The explorer of ``model`` in a Jupyter notebook (:func:`aicircle.explorer.explore`).

    ``model`` is a :class:`Model` or a path (the shipped model by default); the
    shipped model starts from its shipped calibration, with the study's scenarios,
    targets and bust classifier; ``params`` (name -> value) replaces the values it
    starts from, ``outcome`` (``'VARIABLE<VALUE'``) the classifier. Needs
    ``pip install 'aicircle[explore]'``.
    """
    from . import explorer  # on use: it loads matplotlib and Panel, which the other commands need not

    model = model if isinstance(model, Model) else load(model if model is not None else shipped_model())
    return explorer.explore(**_explorer_arguments(model, params, outcome))


__all__ = [
    "AicircleError", "IntegrationError", "InvalidInput", "Model", "ModelReadError", "ResourceLimit",
    "TargetFileError", "UnknownName", "UnsupportedFeature", "__version__", "calibrate", "explore", "load",
    "observables", "sensitivity", "shipped_model", "shipped_parameters", "shipped_targets", "study",
    "tipping",
]
