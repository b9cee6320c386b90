"""Where the shipped model, targets and calibration results live.

They are package data (``aicircle.models``, ``aicircle.calibration``), found
through the import system (never the working directory); in a source checkout that is not installed
they are the top-level ``models/`` and ``calibration/`` folders.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _package_dir(package: str, folder: str) -> Path:
    """The installed data package's folder, else the source tree's ``folder``.

    The data folders have no ``__init__.py`` (they are namespace packages), so
    their location comes from the import system's search path.
    """
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
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
