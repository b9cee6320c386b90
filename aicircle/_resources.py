"""Where the shipped model, targets and calibration results live.

They are package data (``aicircle.models``, ``aicircle.calibration``), found
with :mod:`importlib.resources`; in a source checkout that is not installed
they are the top-level ``models/`` and ``calibration/`` folders.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _package_dir(package: str, folder: str) -> Path:
    try:
        path = Path(str(resources.files(package)))
        if path.is_dir():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return _SOURCE_ROOT / folder


def models_dir() -> Path:
    return _package_dir("aicircle.models", "models")


def calibration_dir() -> Path:
    return _package_dir("aicircle.calibration", "calibration")


def shipped_model() -> Path:
    """The capital-circle model, ``models/aicircle.mdl``."""
    return models_dir() / "aicircle.mdl"


def shipped_targets() -> Path:
    """The calibration targets, ``calibration/targets.csv``."""
    return calibration_dir() / "targets.csv"


def shipped_parameters() -> Path:
    """The shipped calibrated parameters, ``calibration/results/parameters.csv``."""
    return calibration_dir() / "results" / "parameters.csv"
