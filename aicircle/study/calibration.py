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
- the shipped calibration lives in ``calibration/results``
  (:func:`load_calibration`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import _resources
from .. import calibrate as cal
from ..observables import read_targets
from .observables import OBSERVABLES
from .scenarios import switches

__all__ = ["ACTUAL_SIGMA", "actuals", "calibrate", "fit_statistics", "load_calibration", "targets",
           "validate"]

#: Targets with a sigma at or above this are plans or projections (the targets' policy, TARGETS.md).
ACTUAL_SIGMA = 0.3


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


def calibrate(model, target_table=None, **kwargs) -> cal.CalibrationResult:
    """:func:`aicircle.calibrate.calibrate` with the study's targets, switches and actuals."""
    table = _table(target_table)
    return cal.calibrate(model, table, switches=switches(model), actuals=actuals(table), **kwargs)


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
