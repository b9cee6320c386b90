"""The capital-circle study's calibration policy: what the toolkit's calibration is given.

:mod:`aicircle.calibrate` knows no study; this module fills its contracts for
the shipped model and targets:

- the targets are read in the study's vocabulary
  (:data:`aicircle.study.observables.OBSERVABLES`), the shipped
  ``calibration/targets.csv`` by default;
- the scenario inputs are switches, never calibrated
  (:func:`aicircle.study.scenarios.switches`);
- the targets that report actuals are those :func:`actuals` marks (sigma
  below the policy's floor for plans and projections, a source that does not
  call the figure one);
- the parameters calibrated besides the screened ones are :data:`INCLUDE`,
  each with the reason it is there (on the shipped model; :func:`included`);
- the shipped calibration lives in ``calibration/results``
  (:func:`load_calibration`); ``aicircle calibrate --seed 0 --out
  calibration/results`` remakes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import _resources
from .. import calibrate as cal
from ..errors import InvalidInput
from ..observables import read_targets
from .observables import OBSERVABLES
from .scenarios import switches

__all__ = ["ACTUAL_SIGMA", "INCLUDE", "actuals", "calibrate", "fit_statistics", "included", "load_calibration",
           "targets", "validate"]

#: Targets with a sigma at or above this are plans or projections (the targets' policy, TARGETS.md).
ACTUAL_SIGMA = 0.3

#: The shipped model's parameters calibrated besides those the screening chooses, in this order (the
#: order of the calibrated parameters seeds the fit's starts), each with why. The screening looks at
#: the model's own values, one parameter at a time; these are the ones it passed over that the data
#: inform: calibration/refit_ends.py set each at an end of its declared range, refitted the others and
#: found a fit better by more than 3.84 (its delta chi2 quoted, on the calibration named).
INCLUDE = {
    "Compute Price Elasticity": "the structural alternative 'elastic compute price', refitted, fitted better "
                                "than the screened calibration",
    "Word of Mouth Rate": "ChatGPT's weekly users accelerated from 200M (Aug 2024) to 500M (Mar 2025), which a "
                          "logistic adoption does only with its rate and ceiling free",
    "Addressable Users": "as Word of Mouth Rate: the ceiling the users' acceleration needs",
    # refit_ends.py on the 25-parameter calibration (chi2 123.05): 21 of 189 end-refits better by > 3.84
    "Cost per GW": "refit at 35: -25.7",
    "Initial AI Capacity GW": "refit at 0.8: -24.2",
    "Fundamental AI Adoption Rate": "refit at 0.2: -21.4",
    "Hype Demand Multiplier": "refit at 0.5: -20.4",
    "Reference VC AI Share": "refit at 0.7: -18.1",
    "AI Operating Margin": "refit at 0.6: -15.9",
    "Fundamentalist Share": "refit at 0.8: -15.3",
    "Hype Demand Adjustment Time": "refit at 2: -15.2",
    "Price Adjustment Time": "refit at 0.5: -14.6",
    "Growth Horizon": "refit at 4: -11.7",
    "Other GPU Buyers Ratio": "refit at 0.2: -9.6",
    "Initial Builder Capacity GW": "refit at 0.05: -9.5",
    "Consumer App Launch Duration": "refit at 0.1: -7.0",
    "GPU Share of AI Capex": "refit at 0.35: -7.0",
    "Reference Compute Price": "refit at 20: -6.6",
    "Max Planned Growth": "refit at 0.1: -6.1",
    "Other AI Demand Ceiling": "refit at 40: -6.1",
    "Export Control Start": "refit at 2025: -5.8",
    "Capacity Life": "refit at 8: -5.4",
    "Builder Adjustment Time": "refit at 2: -4.2",
    "Initial Capacity Under Construction GW": "refit at 0.25: -4.2",
    # refit_ends.py on the 46-parameter calibration (chi2 70.1): 1 of 162 better by > 3.84
    "Demand Forecast Horizon": "refit at 3: -5.6",
}


def targets(path=None) -> pd.DataFrame:
    """A target file read in the study's vocabulary; the shipped targets by default."""
    return read_targets(path if path is not None else _resources.shipped_targets(), OBSERVABLES)


def actuals(table: pd.DataFrame) -> np.ndarray:
    """Which targets report actuals, one flag per row of ``table`` (read_targets' table).

    An actual has sigma below :data:`ACTUAL_SIGMA` and a source that does not
    call the figure a plan or projection (words in the source's text, not in
    its URLs: 'employees-plan-6-billion' is a headline, not a plan).
    """
    words = table["source"].fillna("").str.replace(r"https?://\S+", " ", regex=True)
    return (table["sigma"].to_numpy() < ACTUAL_SIGMA) & ~words.str.contains(
        r"\b(?:plan|projection)s?\b", case=False).to_numpy()


def _table(target_table):
    return target_table if isinstance(target_table, pd.DataFrame) else targets(target_table)


def included(model, include=None) -> list:
    """The parameters :func:`calibrate` adds to the screened ones: :data:`INCLUDE` on the shipped
    model (none on any other), then ``include`` (names, in the model's spelling or not)."""
    names = list(INCLUDE) if Path(model.path).resolve() == _resources.shipped_model().resolve() else []
    unknown = [name for name in names if name not in model.parameters.index]
    if unknown:
        raise InvalidInput(f"the study's INCLUDE (aicircle/study/calibration.py) names '{unknown[0]}', which is "
                           f"not a parameter of {model.path.name}: remove it there or rename it as the model does")
    for name in include or ():
        resolved = model.resolve(name)
        if resolved not in names:
            names.append(resolved)
    return names


def calibrate(model, target_table=None, include=None, **kwargs) -> cal.CalibrationResult:
    """:func:`aicircle.calibrate.calibrate` with the study's targets, switches and actuals, and the
    screened parameters joined by :func:`included` (the shipped :data:`INCLUDE`, then ``include``);
    with ``free=`` the parameters are those, and ``include`` must be empty."""
    table = _table(target_table)
    if kwargs.get("free") is not None:
        if include:
            raise InvalidInput("include adds to the screened parameters; with free, list them all there")
        return cal.calibrate(model, table, switches=switches(model), actuals=actuals(table), **kwargs)
    return cal.calibrate(model, table, switches=switches(model), actuals=actuals(table),
                         include=included(model, include), **kwargs)


def validate(model, target_table=None, params=None) -> pd.DataFrame:
    """:func:`aicircle.calibrate.validate` against the study's targets (the shipped ones by default)."""
    return cal.validate(model, _table(target_table), params)


def fit_statistics(target_table, table, chi2=None) -> dict:
    """:func:`aicircle.calibrate.fit_statistics` with the study's actuals."""
    return cal.fit_statistics(target_table, table, chi2, actuals=actuals(target_table))


def load_calibration(results_dir=None) -> dict:
    """The calibrated parameters, ensemble and fit summary written by ``aicircle calibrate``, and the
    structural alternatives of ``calibration/structural.py`` (the shipped calibration by default)."""
    d = Path(results_dir) if results_dir else _resources.calibration_dir() / "results"
    return cal.read_results(d, (*cal.RESULT_TABLES, "structural"))
